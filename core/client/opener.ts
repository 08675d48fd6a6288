import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import type { Sealer } from "../crypto/envelope.js";
import { identitySecrets } from "../crypto/keys.js";
import type { MailboxItem } from "../protocol/schema.js";
import type { Contact } from "./cache.js";
import type { ContactKeyView } from "./key-history.js";
import { type Opened, openItem } from "./open.js";

/** What opening needs to know of each sender of a batch, read once per batch (and sent to the threads). */
export type SenderSnapshot = Record<string, { contact: Contact | null; view: ContactKeyView | null }>;

export interface OpenerOptions {
  me: string;
  /** This user's sealers, current keys first, then the keys held before rotations. */
  sealers: Sealer[];
  /** Worker threads for large batches (recovery pages); 0 opens everything on the calling thread. */
  threads?: number;
}

/** Batches smaller than this are opened on the calling thread: a thread round trip costs more than it saves. */
const PARALLEL_MIN = 64;

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

  constructor(private readonly options: OpenerOptions) {
    this.threads = options.threads ?? Math.min(4, availableParallelism());
  }

  /** Opens `items`, in order. `contact`/`keysOf` are read once per sender. */
  async open(
    items: MailboxItem[],
    lookup: { contact(name: string): Contact | null; keysOf(name: string): ContactKeyView | null },
  ): Promise<Opened[]> {
    const senders: SenderSnapshot = {};
    for (const item of items) {
      const n = item.envelope.from;
      if (n === this.options.me || senders[n]) continue;
      senders[n] = { contact: lookup.contact(n), view: lookup.keysOf(n) };
    }
    if (items.length < PARALLEL_MIN || this.threads < 2) return this.openHere(items, senders);
    try {
      const workers = this.start();
      const share = Math.ceil(items.length / workers.length);
      const parts = await Promise.all(
        workers.map((w, i) => this.run(w, items.slice(i * share, (i + 1) * share), senders)),
      );
      return parts.flat();
    } catch {
      // A thread that failed (or could not start) costs speed, never a message: open here.
      return this.openHere(items, senders);
    }
  }

  /** Opens one item on the calling thread with fresh look-ups (after a key history was fetched). */
  openOne(
    item: MailboxItem,
    lookup: { contact(name: string): Contact | null; keysOf(name: string): ContactKeyView | null },
  ): Opened {
    return openItem(item, { me: this.options.me, sealers: this.options.sealers, ...lookup });
  }

  async close(): Promise<void> {
    const workers = this.workers ?? [];
    this.workers = null;
    for (const [, w] of this.waiting) w.reject(new Error("the opener was closed"));
    this.waiting.clear();
    await Promise.all(workers.map((w) => w.terminate()));
  }

  private openHere(items: MailboxItem[], senders: SenderSnapshot): Opened[] {
    const ctx = {
      me: this.options.me,
      sealers: this.options.sealers,
      contact: (n: string) => senders[n]?.contact ?? null,
      keysOf: (n: string) => senders[n]?.view ?? null,
    };
    return items.map((i) => openItem(i, ctx));
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
    this.workers = Array.from({ length: this.threads }, () => {
      const w = new Worker(script, { workerData });
      w.on("message", (m: { id: number; opened?: Opened[]; error?: string }) => {
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
        for (const other of all) void other.terminate();
      });
      // An idle opener never keeps the process alive.
      w.unref();
      return w;
    });
    return this.workers;
  }

  private run(w: Worker, items: MailboxItem[], senders: SenderSnapshot): Promise<Opened[]> {
    if (items.length === 0) return Promise.resolve([]);
    // Referenced only while it has work: the process waits for a batch, never for an idle thread.
    w.ref();
    return new Promise<Opened[]>((resolve, reject) => {
      const id = ++this.next;
      this.waiting.set(id, { resolve, reject });
      w.postMessage({ id, items, senders });
    }).finally(() => w.unref());
  }
}
