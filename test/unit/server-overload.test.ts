import assert from "node:assert/strict";
import { generateKeyPairSync } from "node:crypto";
import { describe, it } from "node:test";
import { silentLogger } from "../../core/logger.js";
import { uuidv7 } from "../../core/protocol/ids.js";
import { ChatServer } from "../../server/server.js";
import { SqliteStore } from "../../server/store/sqlite.js";
import type { UserRecord } from "../../server/store/store.js";
import { startMemoryBroker } from "../helpers/memory-broker.js";
import { TEST_SECRET } from "../helpers/memory-stack.js";
import { waitFor } from "../helpers/stack.js";

/** A store whose registrations wait until the test opens the gate, to hold requests in flight. */
class GatedStore extends SqliteStore {
  private open!: () => void;
  private readonly gate = new Promise<void>((r) => {
    this.open = r;
  });
  release(): void {
    this.open();
  }
  override async registerUser(user: UserRecord) {
    await this.gate;
    return super.registerUser(user);
  }
}

const key = () => generateKeyPairSync("ed25519").publicKey.export({ format: "jwk" }).x!;

describe("server back-pressure", () => {
  it("refuses work beyond its in-flight bound as unavailable, and finishes what it took before stopping", async () => {
    const broker = startMemoryBroker();
    const hub = broker.hub;
    const store = new GatedStore(":memory:");
    await store.init();
    const server = await ChatServer.start({
      transport: hub.workerTransport(),
      endpoints: ["memory://hub"],
      store,
      secret: TEST_SECRET,
      log: silentLogger,
      id: "s",
      maxInFlight: 3,
    });
    const link = hub.clientTransport().connect("memory://hub");
    const replies = new Map<string, { ok: boolean; error?: { code: string } }>();
    link.onReply((f) => {
      const r = JSON.parse(f.toString()) as { id: string; ok: boolean; error?: { code: string } };
      replies.set(r.id, r);
    });
    const ids = Array.from({ length: 10 }, () => uuidv7());
    ids.forEach((id, i) => {
      const body = { name: `user${i}`, keys: { sign: key(), enc: key() } };
      link.send(Buffer.from(JSON.stringify({ v: 1, id, type: "register", body })), "service");
    });
    await waitFor("the refusals", () => replies.size === 7, 5000);
    assert.equal(server.pending, 3, "three requests held, no more");
    for (const id of ids.slice(3)) assert.equal(replies.get(id)?.error?.code, "unavailable");
    const stopping = server.stop();
    store.release();
    await stopping;
    await waitFor("the held replies", () => replies.size === 10, 5000);
    for (const id of ids.slice(0, 3))
      assert.equal(replies.get(id)?.ok, true, "what was taken is finished before the stop");
    await link.close();
    broker.stop();
  });
});
