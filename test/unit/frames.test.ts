import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { errorFrame, okFrame, okFrameJson, okFrameParts, requestIdOf } from "../../core/protocol/frames.js";

describe("reply frames (core/protocol/frames.ts)", () => {
  it("builds ok and error replies in the wire shape", () => {
    assert.deepEqual(JSON.parse(okFrame("r1", { time: "t" }).toString()), {
      v: 1,
      id: "r1",
      ok: true,
      body: { time: "t" },
    });
    assert.deepEqual(JSON.parse(errorFrame(null, { code: "bad_request", message: "m" }).toString()), {
      v: 1,
      id: null,
      ok: false,
      error: { code: "bad_request", message: "m" },
    });
    const limited = errorFrame("r2", { code: "rate_limited", message: "slow down", retryAfterMs: 250 });
    assert.equal(JSON.parse(limited.toString()).error.retryAfterMs, 250);
  });

  it("an ok reply from JSON text equals one from the value, byte for byte", () => {
    const body = { items: [{ a: 'ü"\\' }], more: false };
    assert.deepEqual(okFrameJson('r"3', JSON.stringify(body)), okFrame('r"3', body));
    assert.deepEqual(okFrameJson(null, "{}"), okFrame(null, {}));
  });

  it("an ok reply from JSON pieces equals one from their joined text, byte for byte", () => {
    // Multi-byte characters (2, 3 and 4 bytes), a lone surrogate (written as U+FFFD by both),
    // JSON escapes, an empty piece and a non-ASCII id: the frame's size is counted, not guessed.
    const parts = ['{"items":[', '{"t":"ü€😀', "", '\ud800"}', ',{"q":"\\"', '"}', '],"more":true}'];
    const joined = parts.join("");
    for (const id of ["r1", 'r"ü', null]) {
      const frame = okFrameParts(id, parts);
      assert.deepEqual(frame, okFrameJson(id, joined));
      assert.equal(
        frame.length,
        Buffer.byteLength(`{"v":1,"id":${JSON.stringify(id)},"ok":true,"body":${joined}}`),
      );
    }
    assert.deepEqual(okFrameParts("r", ["{}"]), okFrame("r", {}));
  });

  it("reads a request's id, cut to 64 characters, and null from anything else", () => {
    assert.equal(requestIdOf(Buffer.from('{"v":1,"id":"abc","type":"ping"}')), "abc");
    assert.equal(requestIdOf(JSON.stringify({ id: "x".repeat(100) })), "x".repeat(64));
    for (const bad of ["not json", '{"id":42}', "null", "[]", '{"__proto__":{"id":"p"}}'])
      assert.equal(requestIdOf(bad), null, bad);
    assert.equal(requestIdOf(Buffer.from([0xff, 0xfe])), null, "invalid UTF-8");
  });
});
