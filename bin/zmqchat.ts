#!/usr/bin/env node
import { main } from "./main.js";

void main(process.argv).then((code) => {
  // Exit only once everything written to stdout and stderr has gone out: when the reader of a
  // pipe is slower than we write, process.exit would drop whatever is still queued (a large
  // `history --json` or `contacts --json` came out cut at 64 KiB).
  let open = 2;
  const flushed = () => {
    if (--open === 0) process.exit(code);
  };
  process.stdout.write("", flushed);
  process.stderr.write("", flushed);
});
