import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { ChatClient } from "../../core/client/client.js";
import { downloadFile, partPath, uploadFile } from "../../core/client/files.js";
import { FILE_CHUNK_BYTES } from "../../core/protocol/files.js";
import { ZMQCHAT_BIN } from "../helpers/cli.js";
import { type DisposableClient, zeromqClient } from "../helpers/clients.js";
import { type RealStack, startStack, waitFor } from "../helpers/stack.js";

const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

interface Line {
  id: string;
  from: string;
  text: string;
  file: { name: string; size: number; type: string; sha256: string } | null;
}

/**
 * Attachments on a real stack (issue 18): a balancer and two server processes over CurveZMQ on
 * loopback, SQLite store and the embedded blob store beside it, the built CLI.
 */
describe("file attachments (real stack)", () => {
  let stack: RealStack;
  let work: string;
  const clients: DisposableClient[] = [];

  // A 5 MiB transfer is some 20 chunk requests: on a machine loaded by other test files, one of them
  // can wait longer than the CLI's default 10 s for its answer, so these commands wait a minute.
  const ok = async (user: string, args: string[], timeoutMs = 60_000) => {
    const r = await stack.cli(user, args, { timeoutMs, env: { ZMQCHAT_REQUEST_TIMEOUT: "60s" } });
    assert.equal(r.code, 0, `${user} ${args.join(" ")}: ${r.stderr}`);
    return r.stdout.trim();
  };

  /** A file of `size` bytes with a canary inside (random elsewhere, so it cannot compress away). */
  function makeFile(name: string, size: number, canary = ""): { path: string; sha256: string } {
    const bytes = randomBytes(size);
    if (canary) Buffer.from(canary).copy(bytes, Math.floor(size / 2));
    const path = join(work, name);
    writeFileSync(path, bytes);
    return { path, sha256: sha(bytes) };
  }

  /** Downloads message `id` as `user` into a directory of its own; returns the bytes' SHA-256. */
  async function fetchAs(user: string, id: string): Promise<string> {
    const dir = join(work, `dl-${user}-${id.slice(-6)}`);
    mkdirSync(dir, { recursive: true });
    const path = await ok(user, ["download", id, "--out", dir], 120_000);
    assert.ok(path.startsWith(dir), `written inside --out: ${path}`);
    return sha(readFileSync(path));
  }

  function blobFiles(): string[] {
    const root = join(stack.dir, "blobs");
    const walk = (p: string): string[] =>
      statSync(p).isDirectory() ? readdirSync(p).flatMap((n) => walk(join(p, n))) : [p];
    return existsSync(root) ? walk(root) : [];
  }

  const fileIds = () => readdirSync(join(stack.dir, "blobs", "f"));

  before(async () => {
    stack = await startStack({ servers: 2, label: "files" });
    work = join(stack.dir, "work");
    mkdirSync(work);
    for (const u of ["alice", "bob", "carol", "dave"]) await ok(u, ["register"]);
    await ok("alice", ["group", "create", "team", "bob", "carol"]);
    await ok("bob", ["group", "accept", "team"]);
    await ok("carol", ["group", "accept", "team"]);
  });

  after(async () => {
    for (const c of clients) await c.dispose();
    await stack?.stop();
  });

  it("1 KiB and 5 MiB files, 1:1 and to a group of three: every recipient and the sender get the same SHA-256", async () => {
    const small = makeFile("small.txt", 1024);
    const mid = makeFile("mid.bin", 5 * MiB);
    const a = await ok("alice", ["send", "bob", "--file", small.path, "the small one"]);
    const b = await ok("alice", ["send", "--group", "team", "--file", mid.path]);
    const c = await ok("bob", ["send", "alice", "--file", mid.path, "back at you"]);
    const d = await ok("carol", ["send", "--group", "team", "--file", small.path]);
    assert.equal(await fetchAs("bob", a), small.sha256);
    assert.equal(await fetchAs("alice", a), small.sha256, "the sender may fetch its own file");
    for (const u of ["alice", "bob", "carol"]) {
      assert.equal(await fetchAs(u, b), mid.sha256, `${u} gets the group's 5 MiB file`);
      assert.equal(await fetchAs(u, d), small.sha256, `${u} gets the group's 1 KiB file`);
    }
    assert.equal(await fetchAs("alice", c), mid.sha256);
    // history --json: the file's public fields after the existing keys, null on a plain message.
    await ok("alice", ["send", "bob", "plain"]);
    const lines = (await ok("bob", ["history", "alice", "--json"]))
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    const withFile = lines.find((l) => l.id === a)!;
    assert.deepEqual(withFile.file, {
      name: "small.txt",
      size: 1024,
      type: "text/plain",
      sha256: small.sha256,
    });
    assert.equal(withFile.text, "the small one");
    // After the message-action keys, before those added later (receipts, mentions): the order chat-path pins.
    const keys = Object.keys(withFile);
    assert.equal(keys[keys.indexOf("reactions") + 1], "file", "file comes right after reactions");
    assert.equal(lines.find((l) => l.text === "plain")!.file, null);
    const group = (await ok("carol", ["history", "--group", "team", "--json"]))
      .split("\n")
      .map((l) => JSON.parse(l) as Line);
    assert.equal(group.find((l) => l.id === b)!.file?.name, "mid.bin");
    assert.equal(
      group.find((l) => l.id === b)!.text,
      "[file] mid.bin",
      "a file without text says which file",
    );
  });

  it("a 50 MiB file to a group of three: both other members get it whole", async () => {
    const big = makeFile("big.bin", 50 * MiB);
    const id = await ok("alice", ["send", "--group", "team", "--file", big.path, "fifty"], 240_000);
    const [b, c] = await Promise.all([fetchAs("bob", id), fetchAs("carol", id)]);
    assert.equal(b, big.sha256);
    assert.equal(c, big.sha256);
  });

  it("a non-recipient's download is refused with exit 4, a made-up id exits 5, and nothing is written", async () => {
    const f = makeFile("secret.bin", 4096);
    const id = await ok("alice", ["send", "bob", "--file", f.path]);
    const dir = join(work, "dave-dl");
    mkdirSync(dir);
    const r = await stack.cli("dave", ["download", id, "--out", dir]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /not sent to you/);
    assert.deepEqual(readdirSync(dir), []);
    // Positive control: the same command by the recipient writes the file.
    assert.equal(await fetchAs("bob", id), f.sha256);
    const unknown = await stack.cli("dave", [
      "download",
      "0190f000-0000-7000-8000-000000000999",
      "--out",
      dir,
    ]);
    assert.equal(unknown.code, 5, unknown.stderr);
    const bad = await stack.cli("dave", ["download", "../../etc/passwd", "--out", dir]);
    assert.equal(bad.code, 2, bad.stderr);
  });

  it("deleting a file message removes the file from the service: refused to a recipient, granted to the author, then nobody fetches it", async () => {
    const f = makeFile("gone.bin", FILE_CHUNK_BYTES + 10);
    const id = await ok("alice", ["send", "bob", "--file", f.path, "soon gone"]);
    const bob = await clientOf("bob");
    await bob.sync();
    const ref = bob.cache.actions.files.get(id);
    assert.ok(ref, "bob's cache holds the file's reference");
    // The attack: a recipient (in the file's audience) asks the service to remove it.
    await assert.rejects(bob.request("file.delete", { id }), (e: Error & { code?: string }) => {
      assert.equal(e.code, "not_found");
      return true;
    });
    // Positive control: the file is still there for bob, and its blobs are on disk.
    assert.equal(await fetchAs("bob", id), f.sha256);
    assert.ok(
      blobFiles().some((p) => p.includes(id)),
      "the scan sees the file's blobs",
    );

    await ok("alice", ["delete", id]);
    assert.deepEqual(
      blobFiles().filter((p) => p.includes(id)),
      [],
      "no chunk, metadata or quota entry of the file is left",
    );
    const dir = join(work, "bob-gone");
    mkdirSync(dir);
    const r = await stack.cli("bob", ["download", id, "--out", dir]);
    assert.equal(r.code, 5, r.stderr);
    assert.match(r.stderr, /deleted by its author/);
    assert.deepEqual(readdirSync(dir), []);
    // A client that kept the key from before (not synced since) is refused by the service itself.
    await assert.rejects(downloadFile(bob, ref, join(dir, "stale.bin")), (e: Error & { code?: string }) => {
      assert.equal(e.code, "not_found");
      return true;
    });
    const line = (await ok("bob", ["history", "alice", "--json"]))
      .split("\n")
      .map((l) => JSON.parse(l) as Line & { deleted: boolean })
      .find((l) => l.id === id)!;
    assert.equal(line.deleted, true);
    assert.equal(line.file, null, "the deleted message's file name and digest are gone from history");
    assert.equal(line.text, "");
  });

  it("a file can answer a message (--reply-to); a reply to an unknown message uploads nothing; --queue is refused", async () => {
    const question = await ok("alice", ["send", "bob", "which file?"]);
    const f = makeFile("answer.bin", 2048);
    const before = fileIds().length;
    const unknown = await stack.cli("bob", [
      "send",
      "alice",
      "--file",
      f.path,
      "--reply-to",
      "0190f000-0000-7000-8000-000000000777",
    ]);
    assert.equal(unknown.code, 5, unknown.stderr);
    assert.equal(fileIds().length, before, "nothing was uploaded for a reply that could not be sent");
    const queued = await stack.cli("bob", ["send", "alice", "--file", f.path, "--queue"]);
    assert.equal(queued.code, 2, queued.stderr);
    assert.match(queued.stderr, /--queue/);
    const id = await ok("bob", ["send", "alice", "--file", f.path, "--reply-to", question, "this one"]);
    const line = (await ok("alice", ["history", "bob", "--json"]))
      .split("\n")
      .map((l) => JSON.parse(l) as Line & { replyTo: string | null })
      .find((l) => l.id === id)!;
    assert.equal(line.replyTo, question);
    assert.equal(line.file?.sha256, f.sha256);
    assert.equal(line.text, "this one");
    assert.equal(await fetchAs("alice", id), f.sha256);
  });

  it("never overwrites without --force", async () => {
    const f = makeFile("keep.txt", 100);
    const id = await ok("alice", ["send", "bob", "--file", f.path]);
    const dir = join(work, "keep");
    mkdirSync(dir);
    writeFileSync(join(dir, "keep.txt"), "mine");
    const r = await stack.cli("bob", ["download", id, "--out", dir]);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, /exists/);
    assert.equal(readFileSync(join(dir, "keep.txt"), "utf8"), "mine");
    await ok("bob", ["download", id, "--out", dir, "--force"]);
    assert.equal(sha(readFileSync(join(dir, "keep.txt"))), f.sha256);
  });

  it("an upload keeps going with the same id when the server serving it is killed with SIGKILL", async () => {
    const f = makeFile("killed-server.bin", 12 * MiB);
    const before = new Set(fileIds());
    const child = spawnCli("alice", ["send", "bob", "--file", f.path]);
    // Kill a server once the upload is under way (some of its chunks are stored).
    await waitFor(
      "chunks of the new upload",
      () => fileIds().some((id) => !before.has(id) && chunksOf(id) >= 4),
      60_000,
    );
    (await stack.leadServer()).child.kill("SIGKILL");
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    assert.deepEqual(
      fileIds().filter((x) => !before.has(x)),
      [id],
      "one upload, under the message's id",
    );
    assert.equal(await fetchAs("bob", id), f.sha256);
    await stack.startServer();
  });

  it("an upload stopped by SIGKILL of the sending process resumes when sent again: same id, only missing chunks", async () => {
    const f = makeFile("resume-up.bin", 12 * MiB);
    const before = new Set(fileIds());
    const first = spawnCli("alice", ["send", "bob", "--file", f.path]);
    let upload = "";
    await waitFor(
      "half the chunks",
      () => {
        upload = fileIds().find((id) => !before.has(id)) ?? "";
        return upload !== "" && chunksOf(upload) >= 20;
      },
      60_000,
    );
    first.child.kill("SIGKILL");
    await first.done;
    const had = chunkTimes(upload);
    assert.ok(had.size < 48, "stopped before the end");
    const id = await ok("alice", ["send", "bob", "--file", f.path], 120_000);
    assert.equal(id, upload, "the retry continues the same upload");
    const now = chunkTimes(upload);
    const rewritten = [...had].filter(([k, t]) => now.get(k) !== t).length;
    // At most the chunks that were in flight when it was killed are sent again.
    assert.ok(rewritten <= 8, `${rewritten} of ${had.size} stored chunks were uploaded again`);
    assert.equal(await fetchAs("bob", id), f.sha256);
  });

  it("a download stopped by SIGKILL continues from its .part file when run again", async () => {
    const f = makeFile("resume-down.bin", 20 * MiB);
    const id = await ok("alice", ["send", "bob", "--file", f.path], 120_000);
    const dir = join(work, "resume-down");
    mkdirSync(dir);
    const out = join(dir, "resume-down.bin");
    const first = spawnCli("bob", ["download", id, "--out", dir]);
    await waitFor(
      "part of the download",
      () => existsSync(partPath(out)) && statSync(partPath(out)).size >= 8 * FILE_CHUNK_BYTES,
      60_000,
    );
    first.child.kill("SIGKILL");
    await first.done;
    const partial = statSync(partPath(out)).size;
    assert.ok(partial < 20 * MiB && !existsSync(out), "stopped before the end, nothing under the final name");
    await ok("bob", ["download", id, "--out", dir]);
    assert.equal(sha(readFileSync(out)), f.sha256);
    assert.ok(!existsSync(partPath(out)));
  });

  it("a hostile file name from the sender is written as a plain name inside --out", async () => {
    const alice = await clientOf("alice");
    const f = makeFile("innocent.txt", 300);
    const ref = await uploadFile(alice, f.path, { user: "bob" }, alice.cache, {});
    const evil = "../../x\u001b[31m\u202etxt.exe";
    const m = await alice.send({ user: "bob" }, "look", { id: ref.id }, { file: { ...ref, name: evil } });
    const dir = join(work, "hostile", "inner");
    mkdirSync(dir, { recursive: true });
    const path = await ok("bob", ["download", m.id, "--out", dir]);
    assert.equal(path, join(dir, "x_[31m_txt.exe"), "the last segment, controls and bidi overrides replaced");
    assert.deepEqual(readdirSync(join(work, "hostile")), ["inner"], "nothing written beside --out");
    assert.equal(sha(readFileSync(path)), f.sha256);
    const human = await ok("bob", ["history", "alice"]);
    assert.ok(!human.includes("\u001b") && !human.includes("\u202e"), "history shows the name escaped");
  });

  it("no plaintext on the server side: a canary inside a file is in no blob and not in the store, but is found where it is in clear", async () => {
    const canary = `CANARY-${randomBytes(12).toString("hex")}`;
    const f = makeFile("canary.bin", 3 * FILE_CHUNK_BYTES, canary);
    const id = await ok("alice", ["send", "bob", "--file", f.path, "canary file"]);
    const serverSide = [
      ...blobFiles(),
      ...readdirSync(stack.dir)
        .filter((n) => n.startsWith("store.db"))
        .map((n) => join(stack.dir, n)),
    ];
    assert.ok(
      serverSide.some((p) => p.includes(id)),
      "the file's blobs are among those scanned",
    );
    const leaks = serverSide.filter((p) => readFileSync(p).includes(canary));
    assert.deepEqual(leaks, []);
    // Positive control: the same scan finds the canary in the recipient's download.
    const dir = join(work, "canary-dl");
    mkdirSync(dir);
    const got = await ok("bob", ["download", id, "--out", dir]);
    assert.ok(readFileSync(got).includes(canary));
  });

  /** Chunk files the blob store holds for an upload. */
  function chunksOf(id: string): number {
    const dir = join(stack.dir, "blobs", "f", id, "c");
    return existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith(".tmp")).length : 0;
  }

  /** Each stored chunk's inode and time (a chunk put again is a new file). */
  function chunkTimes(id: string): Map<string, string> {
    const dir = join(stack.dir, "blobs", "f", id, "c");
    return new Map(
      readdirSync(dir)
        .filter((n) => !n.endsWith(".tmp"))
        .map((n) => {
          const s = statSync(join(dir, n));
          return [n, `${s.ino}:${s.mtimeMs}`];
        }),
    );
  }

  function spawnCli(
    user: string,
    args: string[],
  ): { child: ChildProcess; done: Promise<{ code: number | null; stdout: string; stderr: string }> } {
    const child = spawn(process.execPath, [ZMQCHAT_BIN, "--user", user, ...args], {
      env: { ...process.env, ZMQCHAT_HOME: join(stack.dir, "homes", user), ZMQCHAT_ENDPOINT: stack.endpoint },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => {
      stdout += d;
    });
    child.stderr!.on("data", (d) => {
      stderr += d;
    });
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.once("exit", (code) => resolve({ code, stdout, stderr })),
    );
    return { child, done };
  }

  /** An in-process client for a user the CLI registered (its profile's keys, a cache of its own). */
  async function clientOf(user: string): Promise<ChatClient> {
    const client = await zeromqClient(stack.dir, user, stack.endpoints, {
      register: false,
      cache: join(stack.dir, `${user}-lib-cache.db`),
    });
    clients.push(client);
    await client.login();
    return client;
  }
});
