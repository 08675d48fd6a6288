import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { report } from "../../bin/report.js";
import { ZmqchatError } from "../../core/errors.js";
import { isIsoTime, sanitizeBody, sanitizeLine } from "../../core/text/sanitize.js";

/** Every code point the sanitizer must never let through to a terminal. */
function unsafeCodePoints(): number[] {
  const out: number[] = [];
  for (let cp = 0; cp <= 0x1f; cp++) out.push(cp);
  for (let cp = 0x7f; cp <= 0x9f; cp++) out.push(cp);
  out.push(0x061c, 0x200e, 0x200f, 0x2028, 0x2029);
  for (let cp = 0x202a; cp <= 0x202e; cp++) out.push(cp);
  for (let cp = 0x2066; cp <= 0x2069; cp++) out.push(cp);
  return out;
}

const RAW_UNSAFE =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the test looks for control characters
  /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe("terminal sanitizer", () => {
  it("makes every C0/C1 control, DEL and bidi control visible in a body, keeping newline and tab", () => {
    for (const cp of unsafeCodePoints()) {
      const ch = String.fromCodePoint(cp);
      const out = sanitizeBody(`a${ch}b`);
      if (cp === 0x0a || cp === 0x09) {
        assert.equal(out, `a${ch}b`, `U+${cp.toString(16)} lays text out and is kept in a body`);
        continue;
      }
      assert.doesNotMatch(out, RAW_UNSAFE, `U+${cp.toString(16)} passed through`);
      assert.match(out, /^a\\(x[0-9a-f]{2}|u[0-9a-f]{4})b$/, `U+${cp.toString(16)} is shown as an escape`);
    }
  });

  it("makes newline and tab visible too in a one-line field", () => {
    assert.equal(sanitizeLine("2025-01-01\n\tx"), "2025-01-01\\x0a\\x09x");
  });

  it("neutralises a title change, a screen clear, a bell and a right-to-left override", () => {
    const evil = "hi\x1b]0;pwned\x07\x1b[2J\x1b[H\u202etxt.exe\u2066";
    const out = sanitizeBody(evil);
    assert.equal(out, "hi\\x1b]0;pwned\\x07\\x1b[2J\\x1b[H\\u202etxt.exe\\u2066");
    assert.ok(!out.includes("\x1b") && !out.includes("\x07") && !out.includes("\u202e"));
    // Positive control: the same check sees the raw text as unsafe.
    assert.match(evil, RAW_UNSAFE);
  });

  it("leaves ordinary text, emoji and right-to-left letters alone", () => {
    for (const s of ["hello, world", "日本語 😀", "שלום", "مرحبا", "a\\x1b literal"])
      assert.equal(sanitizeBody(s), s);
  });

  it("accepts ISO 8601 times and refuses anything else", () => {
    for (const t of ["2026-12-01T14:56:55.123Z", "2026-12-01T14:56:55Z", "2026-12-01T14:56:55+02:00"])
      assert.ok(isIsoTime(t), t);
    for (const t of ["yesterday", "2026-13-45T99:99:99Z", "2026-12-01 14:56:55", "\x1b[2J", ""])
      assert.ok(!isIsoTime(t), JSON.stringify(t));
  });

  it("error reports (which may quote the service) reach stderr sanitized", () => {
    const out = new PassThrough();
    let written = "";
    out.on("data", (d) => {
      written += d;
    });
    const code = report(
      new ZmqchatError("not_found", "no user \x1b]0;pwned\x07\u202eevil", { hint: "try \x1b[2J" }),
      false,
      (line) => out.write(`${line}\n`),
    );
    assert.equal(code, 5);
    assert.doesNotMatch(written, RAW_UNSAFE);
    assert.match(written, /\\x1b\]0;pwned\\x07\\u202eevil/);
  });
});
