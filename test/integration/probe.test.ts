import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, it } from "node:test";
import { waitForBalancer } from "../../bin/probe.js";

/** A loopback port nothing listens on (taken, then released). */
function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** `zmqchat up --detach` waits for the balancer only while the supervisor it started is alive. */
describe("waiting for a balancer that is starting", () => {
  it("gives up as soon as whatever was starting it has ended, not at the deadline", async () => {
    const endpoint = `tcp://127.0.0.1:${await unusedPort()}`;
    let asked = 0;
    // A one-hour deadline: only the supervisor's end can finish this wait.
    const up = await waitForBalancer(endpoint, 3_600_000, () => ++asked <= 2);
    assert.equal(up, false);
    assert.equal(asked, 3, "polled twice while starting, then stopped when told");
  });

  it("without that, polls a silent endpoint until its deadline (the positive control)", async () => {
    const endpoint = `tcp://127.0.0.1:${await unusedPort()}`;
    let asked = 0;
    const up = await waitForBalancer(endpoint, 1_200, () => {
      asked++;
      return true;
    });
    assert.equal(up, false);
    assert.ok(asked >= 2, `polled ${asked} times`);
  });
});
