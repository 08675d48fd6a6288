import { parentPort, workerData } from "node:worker_threads";
import Database from "better-sqlite3";
import { type AppendRequest, appendBatch, appendStatements } from "./sqlite-append.js";

/**
 * The SQLite store's writer thread (sqlite.ts, SqliteWriter): its own connection to the store's
 * file, on which each group commit runs, so the server's event loop goes on while the commit
 * syncs the log (synchronous=FULL: a commit is visible to readers, this server's and the other
 * servers', only once it is durable, as before). Busy answers go back to the server, which
 * retries off the event loop; SQLite never waits here.
 */

export interface WriterJob {
  id: number;
  batch?: AppendRequest[];
  close?: true;
}

export type WriterReply =
  | { id: number; results: ReturnType<typeof appendBatch> }
  | { id: number; error: string; code: string | null }
  /** The connection is open and the statements prepared (sent once, first). */
  | { id: 0; ready: true };

const { path, autocheckpoint } = workerData as { path: string; autocheckpoint: number };
const port = parentPort!;
const db = new Database(path);
db.pragma("busy_timeout = 0");
db.pragma("synchronous = FULL");
db.pragma(`wal_autocheckpoint = ${autocheckpoint}`);
const stmts = appendStatements(db);
const commit = db.transaction((batch: AppendRequest[]) => appendBatch(stmts, batch));
port.postMessage({ id: 0, ready: true } satisfies WriterReply);

port.on("message", (job: WriterJob) => {
  if (job.close) {
    db.close();
    port.close();
    return;
  }
  let reply: WriterReply;
  try {
    reply = { id: job.id, results: commit.immediate(job.batch ?? []) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    reply = { id: job.id, error: (err as Error).message, code: typeof code === "string" ? code : null };
  }
  port.postMessage(reply);
});
