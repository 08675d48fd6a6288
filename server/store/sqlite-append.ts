import type Database from "better-sqlite3";
import { type AppendInput, envelopeFor } from "./store.js";

/**
 * The SQLite store's group commit, as one function over three statements: run inside a write
 * transaction (BEGIN IMMEDIATE) on the store's writer thread (sqlite-writer.ts) or, for an
 * in-memory store, on the server's own (sqlite.ts). Plain data in and out, so it crosses threads.
 */

/** One request's appends, in order; `follows`: the copy that must be stored first (else nothing is). */
export interface AppendRequest {
  inputs: readonly AppendInput[];
  follows?: { owner: string; id: string };
}

/** Where one copy landed: owner, mailbox position (the cursor), its server time, its predecessor's position. */
export type PlacedRow = [owner: string, cursor: string, serverTime: string, prev: string | null];

export interface AppendedRow {
  placed: PlacedRow[];
  /** Every copy was stored before (a resend). */
  duplicate: boolean;
}

export type AppendStatements = ReturnType<typeof appendStatements>;

export function appendStatements(db: Database.Database) {
  return {
    insertItem: db.prepare(
      "INSERT OR IGNORE INTO mailbox (owner, msg_id, server_time, envelope) VALUES (?, ?, ?, ?)",
    ),
    // The mailbox position before a copy, read in the append's own write transaction: later
    // appends get larger positions (AUTOINCREMENT), so it stays the predecessor.
    prevItem: db.prepare<[string, number], { pos: number | null }>(
      "SELECT max(pos) AS pos FROM mailbox WHERE owner = ? AND pos < ?",
    ),
    findItem: db.prepare<[string, string], { pos: number; server_time: string }>(
      "SELECT pos, server_time FROM mailbox WHERE owner = ? AND msg_id = ?",
    ),
  };
}

/**
 * The fields of an append that the transaction needs (what crosses to the writer thread). The
 * base envelope stays behind when every owner has a copy of its own (envelope v2 and later):
 * no mailbox would store it, and it was a third of what a 1:1 send cloned to the thread.
 */
export function appendRequest(
  inputs: readonly AppendInput[],
  follows?: AppendRequest["follows"],
): AppendRequest {
  const rows = inputs.map((i) => ({
    id: i.id,
    owners: i.owners,
    envelope: i.copies && i.owners.every((o) => i.copies!.has(o)) ? "" : i.envelope,
    ...(i.copies ? { copies: i.copies } : {}),
  }));
  return follows ? { inputs: rows, follows } : { inputs: rows };
}

/**
 * Writes each request in arrival order, inside the caller's transaction. One whose predecessor
 * is not stored waits for it: a request that arrived in the same commit before the one it
 * follows (its checks took longer) is written right after it. What is still without its
 * predecessor at the end stores nothing (null). Each request is looked up once in the store and
 * once in `waiting`, however its requests are ordered (no rounds over the batch).
 */
export function appendBatch(
  stmts: AppendStatements,
  batch: readonly AppendRequest[],
): Array<AppendedRow[] | null> {
  const last = new Map<string, number>();
  const out: Array<AppendedRow[] | null> = new Array(batch.length).fill(null);
  /** Requests waiting for a copy written later in this commit, by that copy's owner and id. */
  const waiting = new Map<string, number[]>();
  // One time for the commit: its copies are stored together.
  const serverTime = new Date().toISOString();
  const write = (first: number) => {
    const ready = [first];
    for (let i = ready.pop(); i !== undefined; i = ready.pop()) {
      const p = batch[i]!;
      out[i] = p.inputs.map((input) => appendOne(stmts, input, last, serverTime));
      // Nothing waits in almost every commit: no key is built per copy then.
      if (waiting.size === 0) continue;
      for (const input of p.inputs)
        for (const owner of input.owners) {
          const key = `${owner}\n${input.id}`;
          const next = waiting.get(key);
          if (!next) continue;
          waiting.delete(key);
          ready.push(...next.reverse());
        }
    }
  };
  for (const [i, p] of batch.entries()) {
    if (p.follows && stmts.findItem.get(p.follows.owner, p.follows.id) === undefined) {
      const key = `${p.follows.owner}\n${p.follows.id}`;
      const list = waiting.get(key);
      if (list) list.push(i);
      else waiting.set(key, [i]);
    } else write(i);
  }
  return out;
}

/**
 * `last`: each mailbox's newest position written by this transaction. The transaction holds
 * the write lock (BEGIN IMMEDIATE), so nothing else lands in a mailbox between two of its own
 * copies: the predecessor of a copy is that position, with no index read.
 */
function appendOne(
  stmts: AppendStatements,
  input: AppendInput,
  last: Map<string, number>,
  serverTime: string,
): AppendedRow {
  const placed: PlacedRow[] = [];
  let duplicate = true;
  for (const owner of input.owners) {
    const r = stmts.insertItem.run(owner, input.id, serverTime, envelopeFor(input, owner));
    let pos: number;
    let time = serverTime;
    let prev: number | null;
    if (r.changes === 1) {
      duplicate = false;
      pos = Number(r.lastInsertRowid);
      prev = last.get(owner) ?? stmts.prevItem.get(owner, pos)?.pos ?? null;
      last.set(owner, pos);
    } else {
      const row = stmts.findItem.get(owner, input.id)!;
      pos = row.pos;
      time = row.server_time;
      prev = stmts.prevItem.get(owner, pos)?.pos ?? null;
    }
    placed.push([owner, String(pos), time, prev === null ? null : String(prev)]);
  }
  return { placed, duplicate };
}
