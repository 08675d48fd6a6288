import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { FileEndpointMemory, orderEndpoints } from "../../core/client/endpoints.js";

const A = "tcp://10.0.0.1:5570";
const B = "tcp://10.0.0.2:5570";
const C = "tcp://10.0.0.3:5570";

describe("endpoint order", () => {
  it("keeps the listed order when nothing was silent", () => {
    assert.deepEqual(orderEndpoints([A, B, C], {}, 1_000_000), [A, B, C]);
  });

  it("tries endpoints remembered as silent last, the longest silent first", () => {
    const now = 1_000_000;
    assert.deepEqual(orderEndpoints([A, B, C], { [A]: now - 100, [B]: now - 500 }, now), [C, B, A]);
  });

  it("forgets a silence after a while", () => {
    const now = 1_000_000;
    assert.deepEqual(orderEndpoints([A, B], { [A]: now - 60_000 }, now, 30_000), [A, B]);
    assert.deepEqual(orderEndpoints([A, B], { [A]: now - 10_000 }, now, 30_000), [B, A]);
  });
});

describe("endpoint memory in the profile", () => {
  it("remembers a silent endpoint across instances until it answers, in a file only the user reads", () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-ep-"));
    try {
      const path = join(dir, "endpoints.json");
      let now = 5_000_000;
      const clock = () => now;
      new FileEndpointMemory(path, clock, 60_000).silent(A);
      assert.equal(statSync(path).mode & 0o777, 0o600);
      assert.deepEqual(new FileEndpointMemory(path, clock, 60_000).order([A, B]), [B, A]);
      new FileEndpointMemory(path, clock, 60_000).answered(A);
      assert.deepEqual(new FileEndpointMemory(path, clock, 60_000).order([A, B]), [A, B]);
      new FileEndpointMemory(path, clock, 60_000).silent(B);
      now += 61_000;
      assert.deepEqual(new FileEndpointMemory(path, clock, 60_000).order([A, B]), [A, B]);
      // Expired entries are dropped at the next write.
      new FileEndpointMemory(path, clock, 60_000).silent(A);
      assert.deepEqual(Object.keys(JSON.parse(readFileSync(path, "utf8")).silent), [A]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("treats a damaged file as empty", () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-ep-"));
    try {
      const path = join(dir, "endpoints.json");
      writeFileSync(path, "{not json");
      assert.deepEqual(new FileEndpointMemory(path).order([A, B]), [A, B]);
      new FileEndpointMemory(path).silent(A);
      assert.deepEqual(new FileEndpointMemory(path).order([A, B]), [B, A]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
