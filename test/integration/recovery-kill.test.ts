import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import Database from "better-sqlite3";
import type { ChatClient } from "../../core/client/client.js";
import { profilePaths } from "../../core/client/profile.js";
import { runCli, ZMQCHAT_BIN } from "../helpers/cli.js";
import { type DisposableClient, zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

/** Messages in the mailbox: several sync pages (a page is at most 1,000 items and 512 KiB), so a kill lands between pages. */
const DIRECT = 2500;
const GROUPED = 2500;

/** Sends `count` messages with at most 32 awaiting their acknowledgement; texts carry their index. */
async function burst(
  client: ChatClient,
  target: { user: string } | { group: string },
  label: string,
  count: number,
) {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await client.send(target, `${label} ${i}`, { timeoutMs: 60_000 });
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/** The cache's rows, read on a connection of its own (the CLI may be writing it). */
function cached(
  path: string,
): Array<{ id: string; conv: string; text: string; cursor: string; verified: number }> {
  if (!existsSync(path)) return [];
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    db.pragma("busy_timeout = 5000");
    return db.prepare("SELECT id, conv, text, cursor, verified FROM messages ORDER BY ord").all() as Array<{
      id: string;
      conv: string;
      text: string;
      cursor: string;
      verified: number;
    }>;
  } catch {
    // The CLI has not made its tables yet.
    return [];
  } finally {
    db.close();
  }
}

describe("recovery into a fresh cache survives kill -9 (issue 15)", () => {
  const cleanups: Array<() => Promise<void>> = [];
  after(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => {});
  });

  it("kill -9 of `zmqchat sync` mid-recovery, then sync again: every message once, in mailbox order, verified", async (t) => {
    const stack: RealStack = await startStack({ servers: 2 });
    cleanups.push(() => stack.stop());
    const clients: Record<string, DisposableClient> = {};
    for (const n of ["alice", "carol", "dave"]) {
      clients[n] = await zeromqClient(stack.dir, n, stack.endpoints);
      cleanups.push(() => clients[n]!.dispose());
    }
    await clients.carol!.login();
    await clients.carol!.groupCreate("crew", ["dave"]);
    await clients.dave!.groupAnswer("crew", "accept");
    // dave is away from here on, and comes back on a new machine: same keys, no cache.
    await clients.dave!.dispose();
    const davePaths = profilePaths(join(stack.dir, "homes", "dave"), "dave");
    for (const suffix of ["", "-wal", "-shm"]) rmSync(`${davePaths.cache}${suffix}`, { force: true });

    await Promise.all([
      burst(clients.alice!, { user: "dave" }, "direct", DIRECT),
      burst(clients.carol!, { group: "crew" }, "group", GROUPED),
    ]);
    const total = DIRECT + GROUPED;

    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ZMQCHAT_HOME: join(stack.dir, "homes", "dave"),
      ZMQCHAT_ENDPOINT: stack.endpoint,
    };
    delete env.ZMQCHAT_USER;
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", "dave", "sync"], {
      env,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    // Killed as soon as its first page is stored (pages of some 500 here), with most still to come:
    // the margin stays wide even on an idle machine, where the rest takes well under a second.
    await waitFor("the first page in dave's cache", () => cached(davePaths.cache).length >= 1, 120_000);
    child.kill("SIGKILL");
    await exited;
    const atKill = cached(davePaths.cache);
    // Positive control: the kill landed mid-recovery (something stored, not everything).
    assert.ok(
      atKill.length >= 1 && atKill.length < total,
      `${atKill.length} of ${total} stored at the kill\n${stderr}`,
    );

    const again = await runCli(["--user", "dave", "sync", "--json"], {
      home: join(stack.dir, "homes", "dave"),
      endpoint: stack.endpoint,
      timeoutMs: 180_000,
    });
    assert.equal(again.code, 0, again.stderr);
    const rows = cached(davePaths.cache);
    // Every message exactly once.
    assert.equal(rows.length, total);
    assert.equal(new Set(rows.map((r) => r.id)).size, total, "no message stored twice");
    assert.deepEqual(
      JSON.parse(again.stdout),
      { recovered: total - atKill.length, total },
      "the second sync fetched only the rest",
    );
    // What was stored before the kill is unchanged, and everything verified.
    assert.deepEqual(
      rows.slice(0, atKill.length).map((r) => r.id),
      atKill.map((r) => r.id),
    );
    assert.equal(rows.filter((r) => r.verified !== 1).length, 0, "every message verified");
    // In mailbox order, and each conversation in its sender's order (texts carry their index).
    const cursors = rows.map((r) => BigInt(r.cursor));
    assert.ok(
      cursors.every((c, i) => i === 0 || c > cursors[i - 1]!),
      "cursors rise",
    );
    for (const [conv, label, count] of [
      ["u:alice", "direct", DIRECT],
      ["g:crew", "group", GROUPED],
    ] as const) {
      const texts = rows.filter((r) => r.conv === conv).map((r) => r.text);
      assert.deepEqual(
        texts,
        Array.from({ length: count }, (_, i) => `${label} ${i}`),
        `${conv} complete and in order`,
      );
    }

    // The commands that read the cache agree: verify-history proves both conversations complete.
    const verify = await runCli(["--user", "dave", "verify-history", "--json"], {
      home: join(stack.dir, "homes", "dave"),
      endpoint: stack.endpoint,
      timeoutMs: 120_000,
    });
    assert.equal(verify.code, 0, verify.stdout + verify.stderr);
    const reports = verify.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { complete: boolean; messages: number });
    assert.equal(reports.length, 2, "both conversations checked");
    assert.ok(
      reports.every((r) => r.complete),
      verify.stdout,
    );
    // Its counts also hold dave's own receipts (numbered with the messages), sent after the sync.
    assert.ok(reports.reduce((s, r) => s + r.messages, 0) >= total, verify.stdout.slice(0, 500));
    // Search finds a message of the first page and one of the last.
    for (const word of ["direct 0", `group ${GROUPED - 1}`]) {
      const found = await runCli(["--user", "dave", "search", ...word.split(" "), "--json"], {
        home: join(stack.dir, "homes", "dave"),
        endpoint: stack.endpoint,
        timeoutMs: 60_000,
      });
      assert.equal(found.code, 0, found.stderr);
      const texts = found.stdout
        .trim()
        .split("\n")
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { text: string }).text);
      assert.ok(texts.includes(word), `search "${word}" finds it: ${texts.slice(0, 5).join(" | ")}`);
    }
    t.diagnostic(
      `killed with ${atKill.length} of ${total} stored; the second sync fetched ${total - atKill.length}`,
    );
  });
});
