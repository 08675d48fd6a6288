import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseCommand } from "../../tui/commands.js";
import { deviceRows } from "../../tui/devices-view.js";
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
    assert.deepEqual(routeKey(s, "j", {}), []);
    for (const a of routeKey(s, "", { escape: true })) s = reduce(s, a);
    assert.equal(s.overlay, null);
  });
});
