import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Cache } from "../../core/client/cache.js";
import type { ChatClient, ClientEvent, ConnectionState } from "../../core/client/client.js";
import { generateIdentity } from "../../core/crypto/keys.js";
import { ZmqchatError } from "../../core/errors.js";
import { parseCommand } from "../../tui/commands.js";
import { Controller, type ProfileAccess } from "../../tui/controller.js";
import { deviceRows, devicesHint } from "../../tui/devices-view.js";
import { routeKey } from "../../tui/keymap.js";
import { initialState, reduce, type State } from "../../tui/state.js";

const devices = [
  {
    id: "0123456789abcdef",
    name: "desk",
    added: "2026-12-01T10:00:00.000Z",
    lastSeen: "2026-12-01T11:30:00.000Z",
    revoked: null,
  },
  {
    id: "fedcba9876543210",
    name: "laptop",
    added: "2026-12-01T10:05:00.000Z",
    lastSeen: null,
    revoked: "2026-12-01T12:00:00.000Z",
  },
];

function main(): State {
  return [
    { type: "session", me: "alice", fingerprint: "1 2 3", endpoint: "memory://hub", bell: true },
    { type: "layout", width: 60, height: 10 },
  ].reduce((s, a) => reduce(s, a as Parameters<typeof reduce>[1]), initialState());
}

describe("TUI /devices", () => {
  it("parses /devices and /devices revoke ID; anything else is a usage error", () => {
    assert.deepEqual(parseCommand("/devices"), { kind: "devices", revoke: null });
    assert.deepEqual(parseCommand("/devices revoke fedcba9876543210"), {
      kind: "devices",
      revoke: "fedcba9876543210",
    });
    assert.equal(parseCommand("/devices revoke laptop").kind, "invalid");
    assert.equal(parseCommand("/devices frobnicate").kind, "invalid");
  });

  it("shows every device with the same information as the CLI, this one marked, and closes on Esc", () => {
    let s = reduce(main(), { type: "devices", devices, current: "0123456789abcdef" });
    assert.equal(s.overlay?.kind, "devices");
    const rows = deviceRows(s.overlay as Parameters<typeof deviceRows>[0]);
    assert.equal(rows.length, 2);
    assert.match(
      rows[0]!,
      /^\* 0123456789abcdef {2}desk {2}added 2026-12-01 10:00Z {2}seen 2026-12-01 11:30Z$/,
    );
    assert.match(rows[1]!, /^ {2}fedcba9876543210 {2}laptop .*revoked 2026-12-01 12:00Z$/);
    // Keys go to the overlay, not to the panes behind it.
    assert.deepEqual(routeKey(s, "j", {}), [{ type: "devicesSelect", by: 1 }]);
    assert.deepEqual(routeKey(s, "x", {}), []);
    for (const a of routeKey(s, "", { escape: true })) s = reduce(s, a);
    assert.equal(s.overlay, null);
  });
});

const me = "0123456789abcdef";
const other = "1111111111111111";
const listed = [
  { id: me, name: "desk", added: "2026-12-01T10:00:00.000Z", lastSeen: null, revoked: null },
  { id: other, name: "laptop", added: "2026-12-01T10:05:00.000Z", lastSeen: null, revoked: null },
  ...devices.slice(1),
];

describe("TUI /devices revoke (state and keys)", () => {
  const open = (revoke?: string) =>
    reduce(main(), { type: "devices", devices: listed, current: me, ...(revoke ? { revoke } : {}) });
  const keys = (s: State, ...presses: Array<[string, Parameters<typeof routeKey>[2]]>) => {
    for (const [input, key] of presses) for (const a of routeKey(s, input, key)) s = reduce(s, a);
    return s;
  };
  const overlay = (s: State) => s.overlay as { at?: number; confirm?: string | null } | null;

  it("starts on this device; r on it is refused with a clear status line and asks nothing", () => {
    const s = keys(open(), ["r", {}]);
    assert.equal(overlay(s)?.at, 0);
    assert.equal(overlay(s)?.confirm, null);
    assert.match(s.notice?.text ?? "", /the device you are on: revoke it from another of your devices/);
    assert.equal(s.notice?.level, "error");
  });

  it("↓ selects another device, r asks first, n takes it back, y confirms and closes the view", () => {
    let s = keys(open(), ["", { downArrow: true }], ["r", {}]);
    assert.equal(overlay(s)?.confirm, other);
    const rows = deviceRows(s.overlay as Parameters<typeof deviceRows>[0]);
    assert.match(rows[1]!, /laptop/);
    // The question starts with its keys: the view cuts the line to its width.
    assert.match(
      devicesHint(s.overlay as Parameters<typeof devicesHint>[0]),
      new RegExp(`^revoke ${other} \\(laptop\\)\\? y: yes · n: no`),
    );
    // While asking, other keys do nothing (j does not move, Enter does not close).
    s = keys(s, ["j", {}], ["", { return: true }]);
    assert.equal(overlay(s)?.at, 1);
    assert.equal(overlay(s)?.confirm, other);
    s = keys(s, ["n", {}]);
    assert.equal(overlay(s)?.confirm, null, "n takes it back");
    assert.equal(s.overlay?.kind, "devices", "the list stays");
    const confirmed = routeKey(keys(s, ["r", {}]), "y", {});
    assert.deepEqual(confirmed, [{ type: "devicesConfirm" }]);
    s = reduce(keys(s, ["r", {}]), confirmed[0]!);
    assert.equal(s.overlay, null);
    assert.match(s.notice?.text ?? "", new RegExp(`revoking ${other}`));
  });

  it("an already revoked device is refused; /devices revoke ID selects ID and asks; this device or an unknown id is refused", () => {
    let s = keys(open(), ["", { downArrow: true }], ["", { downArrow: true }], ["", { downArrow: true }]);
    assert.equal(overlay(s)?.at, 2, "stops at the last row");
    s = keys(s, ["r", {}]);
    assert.match(s.notice?.text ?? "", /already revoked/);
    const asked = open(other);
    assert.equal(overlay(asked)?.at, 1);
    assert.equal(overlay(asked)?.confirm, other);
    assert.match(open(me).notice?.text ?? "", /the device you are on/);
    assert.equal(overlay(open(me))?.confirm, null);
    assert.match(open("2222222222222222").notice?.text ?? "", /no device 2222222222222222/);
  });
});

class FakeClient {
  readonly publicKeys = generateIdentity("alice").publicKeys;
  readonly endpoint = "memory://fake";
  readonly name = "alice";
  state: ConnectionState = "offline";
  closed = false;
  private readonly listeners = new Set<(e: ClientEvent) => void>();
  constructor(
    readonly cache: Cache,
    private readonly refuse = false,
  ) {}
  on(l: (e: ClientEvent) => void) {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(e: ClientEvent) {
    for (const l of this.listeners) l(e);
  }
  async register() {
    // Keys another device rotated: the service knows the name with other keys.
    if (this.refuse) throw new ZmqchatError("conflict", "the name alice is registered with other keys");
    return { created: false };
  }
  async goLive() {}
  keepAlive() {}
  markRead() {}
  async startPresence() {}
  presenceOf() {
    return null;
  }
  async users() {
    return [];
  }
  async groups() {
    return [];
  }
  async login() {}
  async request(type: string) {
    assert.equal(type, "devices.list");
    return { devices: listed, current: me };
  }
}

describe("TUI /devices revoke and key pickup (the worker)", () => {
  const until = async (what: string, ok: () => boolean) => {
    const deadline = Date.now() + 5000;
    while (!ok()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const profiles = (clients: FakeClient[], extra: Partial<ProfileAccess>) => {
    const opened: FakeClient[] = [];
    const access: ProfileAccess = {
      list: () => ["alice"],
      exists: () => true,
      open: () => {
        const c = clients[opened.length]!;
        opened.push(c);
        return {
          client: c as unknown as ChatClient,
          close: async () => {
            c.closed = true;
          },
        };
      },
      create: () => {
        throw new Error("not here");
      },
      ...extra,
    };
    return { access, opened };
  };

  it("y revokes the selected device with the running client, then signs in again with the rotated keys", async () => {
    const cache = new Cache(":memory:");
    const [first, second] = [new FakeClient(cache), new FakeClient(cache)];
    const calls: Array<[string, unknown, string]> = [];
    const { access, opened } = profiles([first, second], {
      revokeDevice: async (name, client, id) => {
        calls.push([name, client, id]);
        return { fingerprint: "11111 22222", pushed: ["3333333333333333"], unreachable: [] };
      },
    });
    const controller = new Controller({ profiles: access, refreshMs: 60_000, noticeMs: 60_000 });
    try {
      controller.start("alice");
      await controller.idle();
      controller.dispatch({ type: "edit", op: { kind: "insert", text: `/devices revoke ${other}` } });
      controller.dispatch({ type: "submit" });
      await until(
        "the question",
        () => (controller.state.overlay as { confirm?: string })?.confirm === other,
      );
      assert.deepEqual(calls, [], "nothing revoked before y");
      for (const a of routeKey(controller.state, "y", {})) controller.dispatch(a);
      await until(
        "the new session",
        () => opened.length === 2 && /revoked/.test(controller.state.notice?.text ?? ""),
      );
      await controller.idle();
      assert.deepEqual(calls, [["alice", first, other]]);
      assert.ok(first.closed, "the session of the old keys is closed");
      assert.equal(controller.client, second as unknown as ChatClient);
      assert.match(
        controller.state.notice!.text,
        /your keys rotated \(11111 22222\); sent them, sealed, to 3333333333333333/,
      );
    } finally {
      await controller.stop();
      await cache.close();
    }
  });

  it("at start, keys another device pushed here are taken and the TUI signs in with them instead of failing", async () => {
    const cache = new Cache(":memory:");
    const [old, renewed] = [new FakeClient(cache, true), new FakeClient(cache)];
    let picked = 0;
    const { access, opened } = profiles([old, renewed], {
      pickUpKeys: async () => {
        picked++;
        return "44444 55555";
      },
    });
    const controller = new Controller({ profiles: access, refreshMs: 60_000, noticeMs: 60_000 });
    try {
      controller.start("alice");
      await until("the second sign-in", () => opened.length === 2);
      await controller.idle();
      assert.equal(picked, 1);
      assert.ok(old.closed);
      assert.match(
        controller.state.notice?.text ?? "",
        /took the new keys another device of yours pushed here: 44444 55555/,
      );
    } finally {
      await controller.stop();
      await cache.close();
    }
  });

  it("with no keys waiting, the refusal is shown as before (positive control of the pickup)", async () => {
    const cache = new Cache(":memory:");
    const { access, opened } = profiles([new FakeClient(cache, true)], { pickUpKeys: async () => null });
    const controller = new Controller({ profiles: access, refreshMs: 60_000, noticeMs: 60_000 });
    try {
      controller.start("alice");
      await until("the refusal", () =>
        /registered with other keys/.test(controller.state.notice?.text ?? ""),
      );
      assert.equal(opened.length, 1);
    } finally {
      await controller.stop();
      await cache.close();
    }
  });

  it("read on another device: the unread counts follow the client's read event", async () => {
    const cache = new Cache(":memory:");
    cache.receipts.owner = "alice";
    const c = new FakeClient(cache);
    const { access } = profiles([c], {});
    const bobs = [1, 2].map((k) => ({
      id: `0190000${k}-0000-7000-8000-000000000000`,
      conv: "u:bob",
      from: "bob",
      to: "alice",
      group: null,
      text: `hi ${k}`,
      sentAt: "2026-12-01T10:00:00.000Z",
      serverTime: "2026-12-01T10:00:00.000Z",
      cursor: String(100 + k),
      verified: true,
      problem: null,
      seq: k,
      device: "d",
    }));
    cache.setState("tui.seen", "100");
    cache.addMessages(bobs, "102");
    const controller = new Controller({ profiles: access, refreshMs: 60_000, noticeMs: 60_000 });
    try {
      controller.start("alice");
      await controller.idle();
      assert.equal(controller.state.convs["u:bob"]?.unread, 2);
      cache.receipts.shared.learned([bobs[1]!.id], true);
      c.emit({ type: "read", convs: ["u:bob"] });
      assert.equal(controller.state.convs["u:bob"]?.unread, 0);
    } finally {
      await controller.stop();
      await cache.close();
    }
  });
});
