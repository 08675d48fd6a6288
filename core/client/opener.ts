import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import type { Sealer } from "../crypto/envelope.js";
import { identitySecrets } from "../crypto/keys.js";
import type { MailboxItem, PublicKeys } from "../protocol/schema.js";
import { startWorker } from "../worker-start.js";
import type { Contact } from "./cache.js";
import type { ContactKeyView } from "./key-history.js";
import { type Opened, openItem } from "./open.js";

/** What opening needs to know of each sender of a batch, read once per batch (and sent to the threads). */
export type SenderSnapshot = Record<string, { contact: Contact | null; view: ContactKeyView | null }>;

/** What the opener is asked per batch: senders' keys, and when this user's own keys were replaced. */
export interface OpenLookup {
  contact(name: string): Contact | null;
  keysOf(name: string): ContactKeyView | null;
  ownReplacedAt?(keys: PublicKeys): string | null;
}

/** When each of this user's sealers was replaced (null for the current one or when not known), read once per batch. */
export type OwnSnapshot = Array<string | null>;

/** `ownReplacedAt` over a snapshot taken for `sealers`. */
export function ownLookup(sealers: Sealer[], own: OwnSnapshot): (keys: PublicKeys) => string | null {
  return (keys) => {
    const i = sealers.findIndex(
      (s) => s.identity.publicKeys.sign === keys.sign && s.identity.publicKeys.enc === keys.enc,
    );
    return i < 0 ? null : (own[i] ?? null);
  };
}

export interface OpenerOptions {
  me: string;
  /** This user's sealers, current keys first, then the keys held before rotations. */
  sealers: Sealer[];
  /** Worker threads for large batches (recovery pages); 0 opens everything on the calling thread. */
  threads?: number;
}

/** Batches smaller than this are opened on the calling thread: a thread round trip costs more than it saves. */
export const PARALLEL_MIN = 64;

/**
 * The smallest batch that starts the worker threads when they are not running yet. Each thread's
 * start loads the crypto modules: some 0.4 s of CPU each under the light bench's load on this
 * 2-core machine (profiled), while a batch below this opens here, in chunks, in some 25-40 ms. A
 * listening client's sync page of a few dozen (the settle sync's page had 90 items in one of three
 * light runs) then no longer starts two threads in the middle of live traffic; a recovery's pages
 * (up to 1,000) still do, and once running the threads take every batch from PARALLEL_MIN.
 */
export const THREAD_START_MIN = 256;

/**
 * While the worker threads start, a batch is opened on the calling thread this many items at a
 * time, with a turn of the event loop between (as live runs are, live.ts): below PARALLEL_MIN.
 */
const HERE_CHUNK = PARALLEL_MIN - 1;

/**
 * Opens batches of mailbox items (openItem for each, in order): small ones (live deliveries) on
 * the calling thread, large ones (sync pages) split across worker threads so that verification
 * uses every core. The sender's keys are read once per batch, on the calling thread.
 */
export class Opener {
  private workers: Worker[] | null = null;
  private readonly waiting = new Map<
    number,
    { resolve: (o: Opened[]) => void; reject: (e: Error) => void }
  >();
  private next = 0;
  private readonly threads: number;
  /** Batches opened on the worker threads (the rest were opened on the calling thread). */
  onThreads = 0;
  /** Batches each thread is working on: a thread is referenced while it has any (ref/unref do not count). */
  private readonly busy = new Map<Worker, number>();
  /** The threads of `workers` that said they are ready (their modules loaded). */
  private readonly readyThreads = new Set<Worker>();
  /** Settles when every thread of `workers` is ready (or failed). */
  private starting: Promise<void> | null = null;

  constructor(private readonly options: OpenerOptions) {
    this.threads = options.threads ?? Math.min(4, availableParallelism());
  }

  /** Whether the worker threads were started (by a batch of THREAD_START_MIN or more, or `ready`). */
  get threadsStarted(): boolean {
    return this.workers !== null;
  }

  /** Opens `items`, in order. `contact`/`keysOf` are read once per sender. */
  async open(items: MailboxItem[], lookup: OpenLookup): Promise<Opened[]> {
    const senders: SenderSnapshot = {};
    for (const item of items) {
      const n = item.envelope.from;
      if (n === this.options.me || senders[n]) continue;
      senders[n] = { contact: lookup.contact(n), view: lookup.keysOf(n) };
    }
    const own: OwnSnapshot = this.options.sealers.map((s, i) =>
      i === 0 ? null : (lookup.ownReplacedAt?.(s.identity.publicKeys) ?? null),
    );
    if (items.length < PARALLEL_MIN || this.threads < 2) return this.openHere(items, senders, own);
    if (!this.workers && items.length < THREAD_START_MIN) return this.openHereInChunks(items, senders, own);
    let workers: Worker[];
    try {
      workers = this.start();
    } catch {
      // Threads that could not start cost speed, never a message: open here.
      return this.openHere(items, senders, own);
    }
    // Threads still starting (each loads the crypto modules: 0.7-1.1 s on this 2-core machine
    // under a flood, traced in the 1:1 bench) are not waited for: the batch is opened here, in
    // chunks, and the threads take the batches after they are ready. The first sync of a
    // listening client (a page of 100-200 while a flood went on) waited for them, and every
    // live delivery behind it (display p99 0.7-1.3 s in more than half the runs).
    if (workers.some((w) => !this.readyThreads.has(w))) return this.openHereInChunks(items, senders, own);
    try {
      const share = Math.ceil(items.length / workers.length);
      const parts = await Promise.all(
        workers.map((w, i) => this.run(w, items.slice(i * share, (i + 1) * share), senders, own)),
      );
      this.onThreads++;
      return parts.flat();
    } catch {
      // A thread that failed costs speed, never a message: open here.
      return this.openHere(items, senders, own);
    }
  }

  /**
   * Starts the worker threads, if not yet, and resolves once they are ready to take batches (or
   * failed: then batches are opened on the calling thread). Until then `open` opens here.
   */
  async ready(): Promise<void> {
    if (this.threads < 2) return;
    let workers: Worker[];
    try {
      workers = this.start();
    } catch {
      return;
    }
    // Threads are unreferenced while idle: referenced while this waits, so the process does too.
    for (const w of workers) w.ref();
    try {
      await this.starting;
    } finally {
      for (const w of workers) if (!this.busy.has(w)) w.unref();
    }
  }

  /** Opens one item on the calling thread with fresh look-ups (after a key history was fetched). */
  openOne(item: MailboxItem, lookup: OpenLookup): Opened {
    return openItem(item, { me: this.options.me, sealers: this.options.sealers, ...lookup });
  }

  async close(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = null;
    this.readyThreads.clear();
    for (const [, w] of this.waiting) w.reject(new Error("the opener was closed"));
    this.waiting.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private openHere(items: MailboxItem[], senders: SenderSnapshot, own: OwnSnapshot): Opened[] {
    const ctx = {
      me: this.options.me,
      sealers: this.options.sealers,
      contact: (n: string) => senders[n]?.contact ?? null,
      keysOf: (n: string) => senders[n]?.view ?? null,
      ownReplacedAt: ownLookup(this.options.sealers, own),
    };
    return items.map((i) => openItem(i, ctx));
  }

  private async openHereInChunks(
    items: MailboxItem[],
    senders: SenderSnapshot,
    own: OwnSnapshot,
  ): Promise<Opened[]> {
    const opened: Opened[] = [];
    for (let i = 0; i < items.length; i += HERE_CHUNK) {
      if (i > 0) await new Promise<void>((resolve) => setImmediate(resolve));
      opened.push(...this.openHere(items.slice(i, i + HERE_CHUNK), senders, own));
    }
    return opened;
  }

  private start(): Worker[] {
    if (this.workers) return this.workers;
    // Compiled, this module sits next to open-worker.js; run from source (tsx), next to the .ts.
    const script = new URL(
      import.meta.url.endsWith(".ts") ? "./open-worker.ts" : "./open-worker.js",
      import.meta.url,
    );
    const workerData = {
      me: this.options.me,
      secrets: this.options.sealers.map((s) => identitySecrets(s.identity)),
    };
    const started: Array<Promise<void>> = [];
    this.workers = Array.from({ length: this.threads }, () => {
      const w = startWorker(script, { workerData });
      let settle = () => {};
      started.push(
        new Promise<void>((resolve) => {
          settle = resolve;
        }),
      );
      w.once("error", () => settle());
      w.once("exit", () => settle());
      w.on("message", (m: { id: number; opened?: Opened[]; error?: string; ready?: true }) => {
        if (m.ready) {
          this.readyThreads.add(w);
          settle();
          return;
        }
        const waiter = this.waiting.get(m.id);
        if (!waiter) return;
        this.waiting.delete(m.id);
        if (m.opened) waiter.resolve(m.opened);
        else waiter.reject(new Error(`opening on a worker thread failed: ${m.error}`));
      });
      w.on("error", (err) => {
        for (const [, waiter] of this.waiting) waiter.reject(err);
        this.waiting.clear();
        const all = this.workers ?? [];
        this.workers = null;
        this.readyThreads.clear();
        for (const other of all) void other.terminate();
      });
      // An idle opener never keeps the process alive.
      w.unref();
      return w;
    });
    this.starting = Promise.all(started).then(() => {});
    return this.workers;
  }

  private run(w: Worker, items: MailboxItem[], senders: SenderSnapshot, own: OwnSnapshot): Promise<Opened[]> {
    if (items.length === 0) return Promise.resolve([]);
    // Referenced only while it has work: the process waits for a batch, never for an idle thread.
    // Two batches can be on a thread at once (a sync opens the next page while it writes one):
    // the first to finish must not unreference the thread under the other.
    const busy = (this.busy.get(w) ?? 0) + 1;
    this.busy.set(w, busy);
    if (busy === 1) w.ref();
    return new Promise<Opened[]>((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, items, senders, own });
    }).finally(() => {
      const left = (this.busy.get(w) ?? 1) - 1;
      if (left > 0) this.busy.set(w, left);
      else {
        this.busy.delete(w);
        w.unref();
      }
    });
  }
}
