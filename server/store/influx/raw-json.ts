/**
 * A JSON parser that keeps numbers as their source text. InfluxDB answers nanosecond timestamps
 * as JSON numbers, and they exceed 2^53: JSON.parse would round them and corrupt cursors.
 *
 * It reads UTF-8 bytes, not a decoded string, and decodes only the strings it returns: a
 * recovery's mailbox page answers some 850 KB, and decoding that whole into one string (a fresh
 * large object each time) took longer than parsing it, 3.7 ms a page against 0.1 ms for the same
 * bytes in pieces of 60 KB (measured here). Quotes and backslashes are ASCII and never occur
 * inside a multi-byte UTF-8 sequence, so scanning bytes for them is exact.
 */

/** A JSON number, exactly as written. */
export class RawNumber {
  constructor(readonly text: string) {}
}

export type RawJson = null | boolean | string | RawNumber | RawJson[] | { [key: string]: RawJson };

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;

export function parseRawJson(input: string | Uint8Array): RawJson {
  const bytes = typeof input === "string" ? Buffer.from(input, "utf8") : input;
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const p = new Parser(buf);
  p.ws();
  const value = p.value();
  p.ws();
  if (p.i !== buf.length) p.fail("trailing characters");
  return value;
}

class Parser {
  i = 0;
  constructor(private readonly b: Buffer) {}

  fail(why: string): never {
    throw new SyntaxError(`bad JSON from InfluxDB at ${this.i}: ${why}`);
  }

  ws(): void {
    const b = this.b;
    for (;;) {
      const c = b[this.i];
      if (c === 32 || c === 10 || c === 13 || c === 9) this.i++;
      else return;
    }
  }

  value(): RawJson {
    switch (this.b[this.i]) {
      case 0x7b: // {
        return this.object();
      case 0x5b: // [
        return this.array();
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.word("true", true);
      case 0x66: // f
        return this.word("false", false);
      case 0x6e: // n
        return this.word("null", null);
      default:
        return this.number();
    }
  }

  private word<T>(w: string, v: T): T {
    if (this.b.toString("latin1", this.i, Math.min(this.b.length, this.i + w.length)) !== w)
      this.fail(`expected ${w}`);
    this.i += w.length;
    return v;
  }

  private number(): RawNumber {
    const b = this.b;
    const start = this.i;
    let j = start;
    for (;;) {
      const c = b[j];
      // digits, - + . e E
      if (
        c !== undefined &&
        ((c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69)
      )
        j++;
      else break;
    }
    const text = b.toString("latin1", start, j);
    if (!NUMBER.test(text)) this.fail("expected a value");
    this.i = j;
    return new RawNumber(text);
  }

  private string(): string {
    const b = this.b;
    const start = this.i;
    let end = b.indexOf(0x22, start + 1);
    // A quote preceded by an odd run of backslashes is escaped: look on.
    for (;;) {
      if (end < 0) this.fail("unterminated string");
      let k = end - 1;
      while (b[k] === 0x5c) k--;
      if ((end - 1 - k) % 2 === 0) break;
      end = b.indexOf(0x22, end + 1);
    }
    this.i = end + 1;
    // Escapes are rare outside envelopes (quotes, backslashes, control characters): the native
    // parser decodes them.
    const escaped = b.subarray(start + 1, end).indexOf(0x5c) >= 0;
    return escaped
      ? (JSON.parse(b.toString("utf8", start, end + 1)) as string)
      : b.toString("utf8", start + 1, end);
  }

  private array(): RawJson[] {
    const b = this.b;
    this.i++;
    const out: RawJson[] = [];
    this.ws();
    if (b[this.i] === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value());
      this.ws();
      const c = b[this.i++];
      if (c === 0x5d) return out;
      if (c !== 0x2c) this.fail("expected , or ]");
    }
  }

  private object(): { [key: string]: RawJson } {
    const b = this.b;
    this.i++;
    const out: { [key: string]: RawJson } = {};
    this.ws();
    if (b[this.i] === 0x7d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (b[this.i] !== 0x22) this.fail("expected a key");
      const key = this.string();
      this.ws();
      if (b[this.i++] !== 0x3a) this.fail("expected :");
      this.ws();
      out[key] = this.value();
      this.ws();
      const c = b[this.i++];
      if (c === 0x7d) return out;
      if (c !== 0x2c) this.fail("expected , or }");
    }
  }
}
