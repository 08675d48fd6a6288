import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Writable } from "zeromq";
import { Outbound } from "../../transports/zeromq/outbound.js";

/** A socket whose sends never complete: everything after the first send waits in the queue. */
function stuckSocket(): { socket: Writable; sent: unknown[][] } {
  const sent: unknown[][] = [];
  const socket = {
    send: (parts: unknown[]) => {
      sent.push(parts);
      return new Promise<void>(() => {});
    },
  } as unknown as Writable;
  return { socket, sent };
}

describe("Outbound's byte bound", () => {
  it("counts string frames in UTF-8 bytes, as they go on the wire", () => {
    const { socket, sent } = stuckSocket();
    const out = new Outbound(socket, 100, () => {}, 12);
    assert.equal(out.push(["first"]), true); // taken by the send in progress
    assert.equal(sent.length, 1);
    // 6 UTF-16 units, 12 bytes in UTF-8: fills the bound exactly.
    assert.equal(out.push(["éééééé"]), true);
    // One more 2-byte character would be 14 bytes queued: refused (6 + 1 units would fit).
    assert.equal(out.push(["é"]), false);
    assert.equal(out.pending, 2);
  });

  it("positive control: ASCII frames up to the bound are queued", () => {
    const { socket } = stuckSocket();
    const out = new Outbound(socket, 100, () => {}, 12);
    out.push(["first"]);
    assert.equal(out.push(["aaaaaaaaaaaa"]), true);
    assert.equal(out.push(["a"]), false);
    assert.equal(out.push([Buffer.alloc(1)]), false);
  });
});
