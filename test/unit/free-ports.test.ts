import assert from "node:assert/strict";
import { createServer, type Server } from "node:net";
import { describe, it } from "node:test";
import { ephemeralLow, freeRun } from "../../bin/free-ports.js";

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ port, host: "127.0.0.1", exclusive: true }, () => resolve(s));
  });
}

describe("freeRun: four ports in a row for the balancer", () => {
  it("takes the OS's port when its neighbours are free", async () => {
    const base = await freeRun("127.0.0.1", 4);
    // All four really are free now: bind them.
    const held = await Promise.all([0, 1, 2, 3].map((i) => listen(base + i)));
    for (const s of held) s.close();
  });

  it("moves below the ephemeral range when every run the OS starts is broken by a taken port", async () => {
    // The OS keeps handing out a port whose next neighbour is taken (as connect()'s even ports do).
    const blocker = await listen(0);
    const taken = (blocker.address() as { port: number }).port;
    let asked = 0;
    try {
      const base = await freeRun("127.0.0.1", 4, {
        first: async () => {
          asked++;
          return taken - 1;
        },
      });
      assert.ok(asked >= 1, "the OS's choice is tried first");
      assert.ok(base < ephemeralLow(), `fell back below the ephemeral range (got ${base})`);
      assert.ok(base + 3 < taken - 1 || base > taken, "the run avoids the taken port");
      const held = await Promise.all([0, 1, 2, 3].map((i) => listen(base + i)));
      for (const s of held) s.close();
    } finally {
      blocker.close();
    }
  });

  it("says so when no run is free", async () => {
    await assert.rejects(
      freeRun("127.0.0.1", 70_000, { tries: 3, first: async () => 1025 }),
      /no 70000 free consecutive ports/,
    );
  });
});
