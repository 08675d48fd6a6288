import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { Dealer } from "zeromq";
import { exitCodeFor } from "../../bin/report.js";
import { loadIdentity, profilePaths } from "../../core/client/profile.js";
import { backupProof, deriveBackupKeys } from "../../core/crypto/backup.js";
import { loginChallengeBytes } from "../../core/crypto/login.js";
import {
  bindingKey,
  loginBindingProof,
  requestBindingProof,
  x25519Private,
  x25519PublicRaw,
  z85Decode,
} from "../../core/crypto/session-binding.js";
import type { ErrorCode } from "../../core/errors.js";
import { InfluxStore } from "../../server/store/influx.js";
import { makeCurveKeys } from "../../transports/zeromq/curve.js";
import { runCli, ZMQCHAT_BIN } from "../helpers/cli.js";
import { type Influxd, startInfluxd } from "../helpers/influxd.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

interface RawReply {
  ok: boolean;
  body?: Record<string, unknown>;
  error?: { code: ErrorCode; message: string };
}

/** One request straight to the balancer, as an attacker holding a token (or a login) would send it. */
async function raw(stack: RealStack, type: string, body: unknown, session?: string): Promise<RawReply> {
  const d = new Dealer({ linger: 0, receiveTimeout: 10_000, ...stack.socketSecurity("client") });
  d.connect(stack.endpoints[0]!);
  try {
    await d.send([
      "S",
      JSON.stringify({ v: 1, id: `t-${type}`, type, ...(session ? { session } : {}), body }),
    ]);
    const [reply] = await d.receive();
    return JSON.parse(reply!.toString()) as RawReply;
  } finally {
    d.close();
  }
}

function refused(r: RawReply, what: string): void {
  assert.equal(r.ok, false, `${what} was accepted`);
  assert.equal(r.error!.code, "unauthorized", `${what}: ${r.error!.code}`);
  assert.equal(exitCodeFor(r.error!.code), 4, `${what}: exit 4`);
}

/** The signed login body the CLI profile of `user` in `home` would send (its device included). */
async function signedLogin(stack: RealStack, user: string): Promise<Record<string, unknown>> {
  const { identity, device } = loadIdentity(profilePaths(join(stack.dir, "homes", user), user), user);
  const ch = await raw(stack, "challenge", { name: user });
  assert.ok(ch.ok, JSON.stringify(ch.error));
  const { nonce, expires, mac } = ch.body as { nonce: string; expires: number; mac: string };
  const sig = sign(null, loginChallengeBytes(user, nonce, expires), identity.signPrivate).toString(
    "base64url",
  );
  return { name: user, nonce, expires, mac, sig, device };
}

async function tokenFor(stack: RealStack, user: string): Promise<string> {
  const r = await raw(stack, "login", await signedLogin(stack, user));
  assert.ok(r.ok, JSON.stringify(r.error));
  return (r.body as { session: string }).session;
}

describe("sessions: single-use logins, rotation and logout end sessions, backups need a proof", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 2 });
    for (const u of ["alice", "bob", "carol"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  it("a signed login is used once: its replays (to either server) are unauthorized", async () => {
    const login = await signedLogin(stack, "alice");
    const first = await raw(stack, "login", login);
    assert.ok(first.ok, "positive control: the fresh login works");
    const session = (first.body as { session: string }).session;
    assert.ok((await raw(stack, "users", { names: ["bob"] }, session)).ok, "its session works");
    for (let i = 0; i < 4; i++) refused(await raw(stack, "login", login), `replay ${i + 1}`);
  });

  it("a token from before `keys rotate` is unauthorized; the new keys log in", async () => {
    const old = await tokenFor(stack, "carol");
    assert.ok((await raw(stack, "users", {}, old)).ok, "positive control: the token works before");
    const rotate = await stack.cli("carol", ["keys", "rotate"]);
    assert.equal(rotate.code, 0, rotate.stderr);
    refused(await raw(stack, "users", {}, old), "a token from before the rotation");
    refused(await raw(stack, "session.renew", {}, old), "renewing it");
    const fresh = await tokenFor(stack, "carol");
    assert.ok((await raw(stack, "users", {}, fresh)).ok, "a login with the new keys works");
    const send = await stack.cli("carol", ["send", "alice", "after my rotation"]);
    assert.equal(send.code, 0, send.stderr);
  });

  it("after `zmqchat logout` this device's token is unauthorized on every server; the CLI logs in again", async () => {
    const token = await tokenFor(stack, "bob");
    assert.ok((await raw(stack, "users", {}, token)).ok, "positive control: the token works before");
    const other = await tokenFor(stack, "alice");
    const out = await stack.cli("bob", ["logout"]);
    assert.equal(out.code, 0, out.stderr);
    // Each raw request may go to either server: ask several times.
    for (let i = 0; i < 4; i++)
      refused(await raw(stack, "users", {}, token), `a token after logout (${i + 1})`);
    assert.ok((await raw(stack, "users", {}, other)).ok, "another user's session is untouched");
    const send = await stack.cli("bob", ["send", "alice", "after logout"]);
    assert.equal(send.code, 0, "a new command logs in afresh");
    const all = await tokenFor(stack, "alice");
    assert.equal((await stack.cli("alice", ["logout", "--all"])).code, 0);
    refused(await raw(stack, "users", {}, all), "a token after logout --all");
  });

  it("backup.get is unauthorized without session or proof and with a wrong proof; the right proof works", async () => {
    const weak = await stack.cli("alice", ["keys", "backup"], { stdin: "password1\n" });
    assert.equal(weak.code, 2, "a weak passphrase is refused");
    assert.match(weak.stderr, /too weak/);
    const forced = await stack.cli("alice", ["keys", "backup", "--force"], { stdin: "password1\n" });
    assert.equal(forced.code, 0, forced.stderr);
    const good = await stack.cli("alice", ["keys", "backup"], { stdin: "orbit tangerine cellar votive\n" });
    assert.equal(good.code, 0, good.stderr);
    refused(await raw(stack, "backup.get", { name: "alice" }), "backup.get without session or proof");
    refused(
      await raw(stack, "backup.get", { name: "alice" }, await tokenFor(stack, "bob")),
      "backup.get with another user's session",
    );
    const params = await raw(stack, "backup.params", { name: "alice" });
    assert.ok(params.ok);
    const p = params.body as { kdf: "scrypt"; N: number; r: number; p: number; salt: string };
    assert.equal(p.N, 2 ** 17, "the KDF stays scrypt N=2^17");
    const wrong = backupProof(deriveBackupKeys("orbit tangerine cellar votivf", p));
    refused(await raw(stack, "backup.get", { name: "alice", proof: wrong }), "backup.get with a wrong proof");
    const right = backupProof(deriveBackupKeys("orbit tangerine cellar votive", p));
    assert.ok((await raw(stack, "backup.get", { name: "alice", proof: right })).ok, "the right proof works");
    assert.ok(
      (await raw(stack, "backup.get", { name: "alice" }, await tokenFor(stack, "alice"))).ok,
      "the owner's session works",
    );
    const restored = await stack.cli("alice", ["keys", "restore"], {
      home: join(stack.dir, "homes", "alice-new"),
      stdin: "orbit tangerine cellar votive\n",
      timeoutMs: 60_000,
    });
    assert.equal(restored.code, 0, restored.stderr);
  });

  it("a backup of the old format (v1, no proof) is refused on a new machine with a clear reason", async () => {
    const db = new Database(stack.store.replace(/^sqlite:/, ""));
    try {
      const v1 = JSON.stringify({
        v: 1,
        kdf: "scrypt",
        N: 2 ** 17,
        r: 8,
        p: 1,
        salt: "c2FsdA",
        nonce: "bm9uY2U",
        ct: "AAAA",
      });
      db.prepare("INSERT OR REPLACE INTO backups (name, blob, updated_at) VALUES (?, ?, ?)").run(
        "carol",
        v1,
        "2026-01-01",
      );
    } finally {
      db.close();
    }
    const r = await stack.cli("carol", ["keys", "restore"], {
      home: join(stack.dir, "homes", "carol-new"),
      stdin: "orbit tangerine cellar votive\n",
    });
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /older zmqchat/);
    assert.match(r.stderr, /keys backup/, "it says what to do");
  });
});

describe("sessions: short-lived tokens renewed over the live link", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 2, serverArgs: ["--session-ttl", "2s", "--log-level", "debug"] });
    for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
  });

  /** Requests the servers handled, by type (and user), from their debug logs. */
  function handled(type: string, user?: string): number {
    let n = 0;
    for (const s of stack.servers)
      for (const line of s.output) {
        if (!line.includes(`"type":"${type}"`) || !line.includes('"outcome":"ok"')) continue;
        if (user && !line.includes(`"user":"${user}"`)) continue;
        n++;
      }
    return n;
  }

  it("a listen keeps its session past the first expiry by renewing it, without a new signed login", async () => {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "bob", "listen", "--json"], {
      env: {
        ...process.env,
        ZMQCHAT_HOME: join(stack.dir, "homes", "bob"),
        ZMQCHAT_ENDPOINT: stack.endpoint,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
    });
    try {
      await waitFor("bob's listen to log in", () => handled("login") >= 1, 20_000);
      // Four renewals on a 2 s lifetime (renewed at half life): the first token is long expired.
      await waitFor("four renewals", () => handled("session.renew", "bob") >= 4, 20_000);
      const logins = handled("login");
      const sent = await stack.cli("alice", ["send", "bob", "past the first expiry"]);
      assert.equal(sent.code, 0, sent.stderr);
      await waitFor("the live message", () => out.includes("past the first expiry"), 15_000);
      assert.equal(
        handled("login"),
        logins + 1,
        "only alice logged in: bob's listen renewed, not re-logged in",
      );
    } finally {
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGINT");
      await exited;
    }
  });
});

describe("sessions: bound to the device's CURVE key", () => {
  let stack: RealStack;
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-bind-"));
  let balancerKey = "";
  const keygen = async (file: string) => {
    const r = await runCli(["curve", "keygen", file], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  before(async () => {
    balancerKey = await keygen(join(dir, "balancer.curve"));
    const serverKey = await keygen(join(dir, "server.curve"));
    writeFileSync(join(dir, "servers.allow"), `${serverKey}\n`);
    stack = await startStack({
      servers: 2,
      balancerArgs: [
        "--curve-keys",
        join(dir, "balancer.curve"),
        "--curve-servers",
        join(dir, "servers.allow"),
      ],
      serverArgs: ["--curve-keys", join(dir, "server.curve"), "--curve-balancer-key", balancerKey],
      cliEnv: { ZMQCHAT_CURVE_SERVER_KEY: balancerKey },
    });
    for (const u of ["alice", "bob"]) assert.equal((await stack.cli(u, ["register"])).code, 0);
  });
  after(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A request over CURVE with a device key pair, optionally with the binding proof of `key`. */
  async function curveRaw(
    keys: { publicKey: string; secretKey: string },
    type: string,
    body: unknown,
    session?: string,
    key?: Buffer,
  ): Promise<RawReply> {
    const d = new Dealer({
      linger: 0,
      receiveTimeout: 10_000,
      curveServerKey: balancerKey,
      curvePublicKey: keys.publicKey,
      curveSecretKey: keys.secretKey,
    });
    d.connect(stack.endpoints[0]!);
    try {
      const id = `b-${type}-${Math.random()}`;
      const pop = session && key ? { pop: requestBindingProof(key, id, type, session, body) } : {};
      await d.send(["S", JSON.stringify({ v: 1, id, type, ...(session ? { session } : {}), ...pop, body })]);
      const [reply] = await d.receive();
      return JSON.parse(reply!.toString()) as RawReply;
    } finally {
      d.close();
    }
  }

  it("the CLI's sessions are bound and work; a stolen token is unauthorized from another CURVE key", async () => {
    const sent = await stack.cli("alice", ["send", "bob", "over a bound session"]);
    assert.equal(sent.code, 0, sent.stderr);
    const h = await stack.cli("bob", ["history", "alice", "--json"]);
    assert.match(h.stdout, /over a bound session/, "positive control: bound sessions carry the CLI");

    const home = join(stack.dir, "homes", "bob");
    const device = JSON.parse(readFileSync(join(home, "users", "bob", "curve.json"), "utf8")) as {
      publicKey: string;
      secretKey: string;
    };
    const { identity } = loadIdentity(profilePaths(home, "bob"), "bob");
    const ch = await curveRaw(device, "challenge", { name: "bob" });
    const { nonce, expires, mac, bind } = ch.body as {
      nonce: string;
      expires: number;
      mac: string;
      bind: string;
    };
    const own = x25519Private(z85Decode(device.secretKey));
    const cluster = Buffer.from(bind, "base64url");
    const key = bindingKey(own, cluster, x25519PublicRaw(own), cluster);
    const login = await curveRaw(device, "login", {
      name: "bob",
      nonce,
      expires,
      mac,
      sig: sign(null, loginChallengeBytes("bob", nonce, expires), identity.signPrivate).toString("base64url"),
      curve: x25519PublicRaw(own).toString("base64url"),
      curveProof: loginBindingProof(key, nonce),
    });
    assert.ok(login.ok, JSON.stringify(login.error));
    const token = (login.body as { session: string; bound: boolean }).session;
    assert.equal((login.body as { bound: boolean }).bound, true);
    assert.ok(
      (await curveRaw(device, "users", {}, token, key)).ok,
      "positive control: bob's device, with proof",
    );

    const thief = makeCurveKeys();
    const tOwn = x25519Private(z85Decode(thief.secretKey));
    const thiefKey = bindingKey(tOwn, cluster, x25519PublicRaw(tOwn), cluster);
    refused(await curveRaw(thief, "users", {}, token), "the token from another CURVE key, no proof");
    refused(await curveRaw(thief, "users", {}, token, thiefKey), "the token with another key's proof");
    refused(await curveRaw(device, "users", {}, token), "the token without its proof");
  });
});

/** Several InfluxStores on one database stand for several servers: no transactions, first claim wins. */
describe("sessions on InfluxDB: servers racing on one login challenge", () => {
  let influxd: Influxd;
  const stores: InfluxStore[] = [];
  before(async () => {
    influxd = await startInfluxd();
    for (let i = 0; i < 3; i++) stores.push(new InfluxStore({ url: influxd.url, db: "sessions_race" }));
    await Promise.all(stores.map((s) => s.init()));
  });
  after(async () => {
    await Promise.all(stores.map((s) => s.close()));
    await influxd?.stop();
  });

  it("of three servers claiming one challenge at once exactly one wins, and a later replay loses everywhere", async () => {
    for (let round = 0; round < 5; round++) {
      const nonce = `race-${round}-${Math.random().toString(36).slice(2)}`;
      const expires = Date.now() + 30_000;
      const won = await Promise.all(stores.map((s) => s.claimOnce(nonce, expires)));
      assert.equal(won.filter(Boolean).length, 1, `round ${round}: ${won.join(", ")}`);
      for (const s of stores) assert.equal(await s.claimOnce(nonce, expires), false, "a replay loses");
    }
  });

  it("a logout on one server is read by the others once it is acknowledged", async () => {
    const [a, b, c] = stores as [InfluxStore, InfluxStore, InfluxStore];
    const at = Date.now();
    await a.revokeSessions("dave", "device:0123456789abcdef", at);
    assert.equal((await b.sessionRevocations("dave")).get("device:0123456789abcdef"), at);
    assert.equal((await c.sessionRevocations("dave")).get("device:0123456789abcdef"), at);
  });
});
