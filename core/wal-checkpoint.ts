import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * The checkpoint thread: its own connection to the database file, which copies the write-ahead log
 * into the database when asked. Plain JavaScript evaluated in the thread (it is this small), so
 * it runs the same compiled or from source.
 */
const THREAD = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.sqlite);
const db = new Database(workerData.path);
db.pragma("busy_timeout = 1000");
parentPort.on("message", (job) => {
  if (job.close) {
    // The last connection to close checkpoints the whole log and removes it.
    db.close();
    parentPort.close();
    return;
  }
  try {
    // PASSIVE: copies what it can without waiting for readers or writers, and never blocks them.
    let [r] = db.pragma("wal_checkpoint(PASSIVE)");
    let full = false;
    if (r && r.log >= job.fullAt) {
      // Writes that came in meanwhile keep the log from starting over (its answer counts only the
      // pages there when it began): FULL copies them under the write lock, which it takes only if
      // it is free now, and holds for a copy of those pages and a sync (busy_timeout 0: it never
      // waits for anyone, and a BUSY answer has released it).
      db.pragma("busy_timeout = 0");
      try {
        [r] = db.pragma("wal_checkpoint(FULL)");
        full = r.busy === 0;
      } finally {
        db.pragma("busy_timeout = 1000");
      }
    }
    parentPort.postMessage({ id: job.id, log: r ? r.log : 0, checkpointed: r ? r.checkpointed : 0, full });
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: String(err) });
  }
});
`;

/** The longest close() waits for the thread to end. */
const CLOSE_WAIT_MS = 5000;

/** How long after a write the log is checkpointed (writes meanwhile share the checkpoint). */
const CHECKPOINT_DELAY_MS = 1000;

/**
 * The log size, in pages, at which the writing connection checkpoints after all (SQLite's
 * default is 1,000): only when the checkpointer falls behind or never ran (a short command).
 */
export const FALLBACK_AUTOCHECKPOINT_PAGES = 10_000;

/**
 * The log size, in pages, from which a checkpoint finishes under the write lock (FULL), so that the
 * next write starts the log over: SQLite's own automatic checkpoint size (1,000 pages, 4 MiB).
 */
export const FULL_CHECKPOINT_PAGES = 1000;

export interface CheckpointResult {
  /** Pages in the write-ahead log, and how many of them are now in the database. */
  log: number;
  checkpointed: number;
  /** The checkpoint finished under the write lock (FULL): the whole log is in the database. */
  full: boolean;
}

/**
 * Checkpoints an SQLite write-ahead log (a client's cache, the server's store) on a worker thread
 * with its own connection, instead of SQLite's automatic checkpoint, which runs inside the commit
 * that crosses 1,000 pages: on the event loop, copying ~4 MB and syncing the database file
 * (commits of a receiving client had a p99 of ~33 ms with it, ~10–17 ms without, on this
 * machine). Started on the first write; the thread never keeps the process alive.
 *
 * A PASSIVE checkpoint alone never let the log start over under steady writes: the log starts over
 * only at a write that finds every page of it copied, and some commit always came in while the
 * thread copied. The log of a busy cache or store then grew to the fallback's 10,000 pages, and
 * that commit checkpointed on the event loop after all (each client's cache every 4 s at 1,000
 * messages/s). So a PASSIVE over a log of FULL_CHECKPOINT_PAGES or more is followed by a FULL one,
 * which copies the rest under the write lock (taken only when free; a writer meanwhile waits about
 * one sync of the few pages added while PASSIVE ran: the store retries off the event loop, a
 * cache's commit waits in its busy handler).
 */
export class WalCheckpointer {
  private worker: Worker | null = null;
  private timer: NodeJS.Timeout | null = null;
  private next = 0;
  private readonly waiting = new Map<
    number,
    { resolve: (r: CheckpointResult) => void; reject: (e: Error) => void }
  >();
  private closed = false;

  constructor(
    private readonly path: string,
    /** How long after a write the log is checkpointed. */
    private readonly delayMs = CHECKPOINT_DELAY_MS,
    /** From how many pages in the log a checkpoint finishes under the write lock (see FULL_CHECKPOINT_PAGES). */
    private readonly fullAtPages = FULL_CHECKPOINT_PAGES,
  ) {}

  /** A write transaction committed: a checkpoint follows within `delayMs`. */
  wrote(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.checkpoint().catch(() => {
        // A failed checkpoint leaves the log to the next one (or to the connection's fallback).
      });
    }, this.delayMs);
    this.timer.unref();
  }

  /** Checkpoints now, on the worker thread. */
  checkpoint(): Promise<CheckpointResult> {
    if (this.closed) return Promise.reject(new Error("the cache is closed"));
    const w = this.start();
    w.ref();
    return new Promise<CheckpointResult>((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      // postMessage clones: Infinity (never FULL) goes over as itself.
      w.postMessage({ id, fullAt: this.fullAtPages });
    }).finally(() => {
      if (this.waiting.size === 0) this.worker?.unref();
    });
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const sqlite = createRequire(import.meta.url).resolve("better-sqlite3");
    const w = new Worker(THREAD, { eval: true, workerData: { path: this.path, sqlite } });
    w.on(
      "message",
      (m: { id: number; log?: number; checkpointed?: number; full?: boolean; error?: string }) => {
        const waiter = this.waiting.get(m.id);
        if (!waiter) return;
        this.waiting.delete(m.id);
        if (m.error !== undefined) waiter.reject(new Error(`checkpoint failed: ${m.error}`));
        else waiter.resolve({ log: m.log ?? 0, checkpointed: m.checkpointed ?? 0, full: m.full === true });
      },
    );
    w.on("error", (err) => this.fail(err));
    w.on("exit", () => this.fail(new Error("the checkpoint thread exited")));
    w.unref();
    this.worker = w;
    return w;
  }

  private fail(err: Error): void {
    this.worker = null;
    for (const [, waiter] of this.waiting) waiter.reject(err);
    this.waiting.clear();
  }

  /**
   * Asks the thread to close its connection and end. The promise settles when it has ended (or
   * after CLOSE_WAIT_MS): until then the thread may still create or remove the -wal and -shm
   * files beside the cache, so whoever removes the directory afterwards waits for it.
   */
  close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.worker;
    this.worker = null;
    for (const [, waiter] of this.waiting) waiter.reject(new Error("the cache is closed"));
    this.waiting.clear();
    if (!w) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, CLOSE_WAIT_MS);
      t.unref();
      w.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      // Closed by the thread itself after what it is doing, so its connection lets go of the file
      // cleanly; kept referenced until then, so that a process awaiting this does not end first.
      w.ref();
      w.postMessage({ close: true });
    });
  }
}
