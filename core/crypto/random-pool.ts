import { randomFillSync } from "node:crypto";

/** Bytes fetched from the CSPRNG at a time. */
const BLOCK = 4096;

/**
 * Random bytes from Node's CSPRNG (OpenSSL's RAND_bytes), fetched a block at a time and handed
 * out once each, as Node's own `randomUUID` does with its cache: one `randomBytes` call costs
 * about 6 µs here whatever its size, and sealing a message took two. Every byte is handed out
 * once; a block is never refilled in place, so what was handed out stays as it was.
 */
export class RandomPool {
  private block = Buffer.alloc(0);
  private at = 0;

  /** `n` fresh random bytes (a view of the current block; n ≤ 4096). */
  take(n: number): Buffer {
    if (n > BLOCK) throw new RangeError(`at most ${BLOCK} random bytes at a time`);
    if (this.at + n > this.block.length) {
      this.block = randomFillSync(Buffer.allocUnsafeSlow(BLOCK));
      this.at = 0;
    }
    const out = this.block.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
}
