import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { runCli } from "../helpers/cli.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

/** CurveZMQ on every link, with a ZAP handler that admits only listed keys. */
describe("CurveZMQ links with a ZAP allow-list", () => {
  let stack: RealStack;
  const dir = mkdtempSync(join(tmpdir(), "zmqchat-curve-"));
  const keygen = async (name: string) => {
    const r = await runCli(["curve", "keygen", join(dir, name)], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    return r.stdout.trim();
  };
  let balancerKey = "";
  let curveEnv: NodeJS.ProcessEnv = {};

  before(async () => {
    balancerKey = await keygen("balancer.curve");
    const serverKey = await keygen("server.curve");
    await keygen("rogue.curve");
    writeFileSync(join(dir, "servers.allow"), `# chat servers\n${serverKey}\n`);
    // Alice's device key is made ahead and listed; bob's device (made on first use) is not.
    const stackHomes = join(dir, "client-homes");
    mkdirSync(join(stackHomes, "alice", "users", "alice"), { recursive: true });
    const aliceDevice = (
      await runCli(["curve", "keygen", join(stackHomes, "alice", "users", "alice", "curve.json")], {
        home: dir,
      })
    ).stdout.trim();
    writeFileSync(join(dir, "clients.allow"), `${aliceDevice}\n`);
    curveEnv = { ZMQCHAT_CURVE_SERVER_KEY: balancerKey };
    stack = await startStack({
      servers: 1,
      balancerArgs: [
        "--curve-keys",
        join(dir, "balancer.curve"),
        "--curve-servers",
        join(dir, "servers.allow"),
        "--curve-clients",
        join(dir, "clients.allow"),
      ],
      serverArgs: ["--curve-keys", join(dir, "server.curve"), "--curve-balancer-key", balancerKey],
      cliEnv: curveEnv,
    });
  });
  after(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const aliceHome = () => join(dir, "client-homes", "alice");

  it("a listed device chats over CURVE, live deliveries included", async () => {
    assert.equal((await stack.cli("alice", ["register"], { home: aliceHome() })).code, 0);
    const sent = await stack.cli("alice", ["send", "alice", "note to self over curve"], {
      home: aliceHome(),
    });
    assert.equal(sent.code, 0, sent.stderr);
    const h = await stack.cli("alice", ["history", "alice", "--json"], { home: aliceHome() });
    assert.match(h.stdout, /note to self over curve/);
  });

  it("a server whose key is not listed never joins", async () => {
    const rogue = await stack.startServer([
      "--curve-keys",
      join(dir, "rogue.curve"),
      "--curve-balancer-key",
      balancerKey,
    ]);
    await waitFor("the balancer to refuse the rogue key", () =>
      stack.balancers[0]!.output.some(
        (l) => l.includes("refused a CURVE key") && l.includes("zmqchat-servers"),
      ),
    );
    assert.equal((await stack.balancerHealth()).liveServers, 1, "only the listed server is live");
    rogue.child.kill("SIGKILL");
  });

  it("an unlisted device, a client without CURVE and one pinning a wrong key cannot get through", async () => {
    const bob = await stack.cli("bob", ["register", "--timeout", "2s"]);
    assert.equal(bob.code, 3, `unlisted device: ${bob.stderr}`);
    // No configured key and no published one to find (an empty runtime directory): plaintext.
    const plain = await stack.cli("carol", ["register", "--timeout", "2s"], {
      env: { ZMQCHAT_CURVE_SERVER_KEY: "", XDG_RUNTIME_DIR: join(dir, "empty-runtime") },
    });
    assert.equal(plain.code, 3, `no CURVE: ${plain.stderr}`);
    const wrongKey = await keygen("impostor.curve");
    const pinned = await stack.cli("alice", ["send", "alice", "hi", "--timeout", "2s"], {
      home: aliceHome(),
      env: { ZMQCHAT_CURVE_SERVER_KEY: wrongKey },
    });
    assert.equal(pinned.code, 3, `wrong pinned key: ${pinned.stderr}`);
  });
});

/** Ansible gives each balancer a key pair of its own: servers and clients pin one key per balancer. */
describe("CurveZMQ with a key pair per balancer", () => {
  let stack: RealStack;
  before(async () => {
    stack = await startStack({ servers: 1, balancers: 2, keyPerBalancer: true });
  });
  after(async () => {
    await stack?.stop();
  });

  it("a server pinning one key per balancer joins both; a client configured with both keys chats through either", async () => {
    for (const i of [0, 1]) assert.equal((await stack.balancerHealth(i)).liveServers, 1);
    const keys = stack.curve!.balancers.map((b) => b.keys.publicKey);
    assert.notEqual(keys[0], keys[1]);
    // Configured keys only: an empty runtime directory, so nothing published can help.
    const env = { ZMQCHAT_CURVE_SERVER_KEY: keys.join(","), XDG_RUNTIME_DIR: join(stack.dir, "no-runtime") };
    assert.equal((await stack.cli("dave", ["register"], { env })).code, 0);
    for (const [i, endpoint] of stack.endpoints.entries()) {
      const one = { ...env, ZMQCHAT_CURVE_SERVER_KEY: keys[i] };
      const r = await stack.cli("dave", ["send", "dave", `via balancer ${i}`], { env: one, endpoint });
      assert.equal(r.code, 0, r.stderr);
    }
    // The keys in the wrong order pin the wrong balancer: refused.
    const swapped = { ...env, ZMQCHAT_CURVE_SERVER_KEY: [...keys].reverse().join(",") };
    const r = await stack.cli("dave", ["send", "dave", "swapped", "--timeout", "2s"], { env: swapped });
    assert.equal(r.code, 3, r.stderr);
  });
});
