/** A terminal without a terminal: streams Ink can render into and read keys from (benchmarks, tests). */

import { EventEmitter } from "node:events";

export class HeadlessStdout extends EventEmitter {
  readonly isTTY = true;
  readonly frames: string[] = [];

  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }

  write = (frame: string): boolean => {
    this.frames.push(frame);
    this.emit("frame", frame);
    return true;
  };

  lastFrame(): string {
    return this.frames.at(-1) ?? "";
  }

  /** Changes the size and tells listeners, as a terminal does on SIGWINCH. */
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit("resize");
  }
}

export class HeadlessStdin extends EventEmitter {
  readonly isTTY = true;
  private data: string | null = null;

  /** Delivers keys as a terminal would (one chunk). */
  write(data: string): void {
    this.data = data;
    this.emit("readable");
  }

  read = (): string | null => {
    const d = this.data;
    this.data = null;
    return d;
  };

  setEncoding(): this {
    return this;
  }
  setRawMode(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  pause(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}
