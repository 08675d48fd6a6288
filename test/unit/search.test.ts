import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import Database from "better-sqlite3";
import { Cache, type ChatMessage } from "../../core/client/cache.js";
import { searchMessages, toMatchQuery } from "../../core/client/search.js";
import { ZmqchatError } from "../../core/errors.js";

let serial = 0;
function msg(from: string, text: string, where: { to: string } | { group: string }): ChatMessage {
  const n = ++serial;
  const isGroup = "group" in where;
  return {
    id: `m-${String(n).padStart(4, "0")}`,
    conv: isGroup ? `g:${where.group}` : `u:${from === "bob" ? where.to : from}`,
    from,
    to: isGroup ? null : where.to,
    group: isGroup ? where.group : null,
    text,
    sentAt: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    serverTime: new Date(Date.UTC(2025, 0, 1, 0, 0, n)).toISOString(),
    cursor: String(n),
    verified: true,
    problem: null,
    seq: n,
    device: "d1",
  };
}

const texts = (hits: Array<{ message: ChatMessage }>) => hits.map((h) => h.message.text);

/** Bob's cache: 1:1 with alice and carol, the group "team", one unverifiable message. */
describe("search over the local cache (SQLite FTS5)", () => {
  let dir: string;
  let cache: Cache;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "zmqchat-search-"));
    cache = new Cache(join(dir, "cache.db"));
    cache.addMessages(
      [
        msg("alice", "Lunch on Friday?", { to: "bob" }),
        msg("bob", "yes, lunch at the café near Köln station", { to: "alice" }),
        msg("carol", "the release is ready for review", { group: "team" }),
        msg("alice", "Grüße aus München! naïve façade", { group: "team" }),
        msg("carol", "lunch friday works for me too", { to: "bob" }),
        msg("alice", "c++ AND rust OR go: NEAR(x y) -foo ^bar col:val", { to: "bob" }),
        msg("alice", "東京 で ランチ", { to: "bob" }),
        { ...msg("mallory", "", { to: "bob" }), verified: false, problem: "bad signature" },
      ],
      "8",
    );
  });
  after(async () => {
    await cache.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("finds words regardless of case, oldest first", () => {
    assert.deepEqual(texts(searchMessages(cache, "LUNCH")), [
      "Lunch on Friday?",
      "yes, lunch at the café near Köln station",
      "lunch friday works for me too",
    ]);
  });

  it("ignores accents both ways and finds non-ASCII words", () => {
    assert.deepEqual(texts(searchMessages(cache, "koln")), ["yes, lunch at the café near Köln station"]);
    assert.deepEqual(texts(searchMessages(cache, "CAFE")), ["yes, lunch at the café near Köln station"]);
    assert.deepEqual(texts(searchMessages(cache, "grüße")), ["Grüße aus München! naïve façade"]);
    assert.deepEqual(texts(searchMessages(cache, "munchen facade")), ["Grüße aus München! naïve façade"]);
    assert.deepEqual(texts(searchMessages(cache, "Naïve")), ["Grüße aus München! naïve façade"]);
    assert.deepEqual(texts(searchMessages(cache, "東京")), ["東京 で ランチ"]);
  });

  it("matches word beginnings, needs every word, and takes quoted phrases as written", () => {
    assert.deepEqual(texts(searchMessages(cache, "rev")), ["the release is ready for review"]);
    assert.deepEqual(texts(searchMessages(cache, "lunch friday")), [
      "Lunch on Friday?",
      "lunch friday works for me too",
    ]);
    assert.deepEqual(texts(searchMessages(cache, '"lunch friday"')), ["lunch friday works for me too"]);
    assert.deepEqual(texts(searchMessages(cache, "lunch nothing-like-this")), []);
  });

  it("filters by sender and by group", () => {
    assert.deepEqual(texts(searchMessages(cache, "lunch", { from: "carol" })), [
      "lunch friday works for me too",
    ]);
    assert.deepEqual(texts(searchMessages(cache, "ready", { group: "team" })), [
      "the release is ready for review",
    ]);
    assert.deepEqual(texts(searchMessages(cache, "lunch", { group: "team" })), []);
    assert.deepEqual(texts(searchMessages(cache, "grüße", { group: "team", from: "alice" })), [
      "Grüße aus München! naïve façade",
    ]);
    assert.deepEqual(texts(searchMessages(cache, "lunch", { conv: "u:alice" })), [
      "Lunch on Friday?",
      "yes, lunch at the café near Köln station",
    ]);
  });

  it("returns the whole message, where it lives, and a marked snippet", () => {
    const [hit] = searchMessages(cache, "release", { highlight: ["<b>", "</b>"] });
    assert.ok(hit);
    assert.equal(hit.message.conv, "g:team");
    assert.equal(hit.message.group, "team");
    assert.equal(hit.message.from, "carol");
    assert.equal(hit.message.verified, true);
    assert.equal(hit.snippet, "the <b>release</b> is ready for review");
  });

  it("keeps the newest matches when limited, still oldest first", () => {
    assert.deepEqual(texts(searchMessages(cache, "lunch", { limit: 2 })), [
      "yes, lunch at the café near Köln station",
      "lunch friday works for me too",
    ]);
  });

  it("takes FTS5 operators and punctuation as plain words, never as a syntax error", () => {
    for (const q of [
      "c++",
      "AND",
      "NEAR(x",
      "-foo",
      "^bar",
      "col:val",
      'rust "unbalanced',
      "OR go",
      "x)",
      "a*b",
    ]) {
      assert.doesNotThrow(() => searchMessages(cache, q), q);
    }
    assert.equal(searchMessages(cache, "col:val").length, 1);
    assert.equal(searchMessages(cache, "NEAR(x").length, 1);
    assert.equal(searchMessages(cache, "near").length, 2, "the word near, and the operator as a word");
  });

  it("refuses a query without a word as a usage error", () => {
    for (const q of ["", "   ", "🚀", "--", '""']) {
      assert.throws(
        () => searchMessages(cache, q),
        (e: unknown) => e instanceof ZmqchatError && e.code === "usage",
        JSON.stringify(q),
      );
    }
  });

  it("does not index unverifiable messages (their text is not shown)", () => {
    assert.deepEqual(
      searchMessages(cache, "signature").map((h) => h.message.from),
      [],
    );
  });

  it("indexes messages added later, and ignores a message stored twice", () => {
    const m = msg("alice", "a brand new zebra", { to: "bob" });
    cache.addMessages([m], String(serial));
    cache.addMessages([m], String(serial));
    assert.deepEqual(texts(searchMessages(cache, "zebra")), ["a brand new zebra"]);
  });

  it("keeps the cache and its WAL side files (the index too) readable by their owner only", () => {
    for (const f of ["cache.db", "cache.db-wal", "cache.db-shm"]) {
      assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    }
  });
});

describe("search index on a cache made before search existed", () => {
  it("is created and filled from the cached messages when the cache opens", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-search-old-"));
    try {
      const path = join(dir, "cache.db");
      const c1 = new Cache(path);
      c1.addMessages([msg("alice", "an old message about zeppelins", { to: "bob" })], "1");
      await c1.close();
      // What a cache looked like before: no index, no triggers.
      const db = new Database(path);
      db.exec(
        "DROP TRIGGER messages_fts_insert; DROP TRIGGER messages_fts_delete; DROP TRIGGER messages_fts_update; DROP TABLE messages_fts;",
      );
      db.close();
      const c2 = new Cache(path);
      const c3 = new Cache(path); // a second process on the same profile: no double fill
      try {
        assert.deepEqual(texts(searchMessages(c2, "zeppelin")), ["an old message about zeppelins"]);
        assert.deepEqual(texts(searchMessages(c3, "zeppelin")), ["an old message about zeppelins"]);
        c3.addMessages([msg("alice", "another zeppelin", { to: "bob" })], "2");
        assert.equal(searchMessages(c2, "zeppelin").length, 2);
      } finally {
        await c2.close();
        await c3.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("toMatchQuery", () => {
  it("quotes every word as a prefix and every quoted phrase as a phrase", () => {
    assert.equal(toMatchQuery("hello world"), '"hello"* "world"*');
    assert.equal(toMatchQuery('say "good morning" now'), '"say"* "good morning" "now"*');
    assert.equal(toMatchQuery("a-b"), '"a-b"*');
    assert.equal(toMatchQuery("!!! ..."), null);
  });
});

describe("search index with queued inserts", () => {
  it("indexes queued messages once, before a search and soon after a burst, in any process of the profile", async () => {
    const dir = mkdtempSync(join(tmpdir(), "zmqchat-search-queue-"));
    try {
      const path = join(dir, "cache.db");
      const writer = new Cache(path);
      const reader = new Cache(path); // another process on the profile
      const raw = new Database(path, { readonly: true });
      const queued = () =>
        (raw.prepare("SELECT count(*) AS n FROM messages_fts_todo").get() as { n: number }).n;
      const indexed = () => (raw.prepare("SELECT count(*) AS n FROM messages_fts").get() as { n: number }).n;
      try {
        const burst = Array.from({ length: 50 }, (_, i) => msg("alice", `quokka number ${i}`, { to: "bob" }));
        writer.addMessages(burst, burst.at(-1)!.cursor);
        // Positive control: the burst waits in the queue, not yet in the index.
        assert.equal(queued(), 50);
        assert.equal(indexed(), 0);
        assert.equal(searchMessages(reader, "quokka", { limit: 1000 }).length, 50, "a search indexes first");
        assert.equal(queued(), 0);
        assert.equal(indexed(), 50);
        // Indexed once: a second catch-up (and a search from the writer) adds nothing.
        assert.equal(writer.searchIndex.catchUp(), 0);
        assert.equal(searchMessages(writer, "quokka", { limit: 1000 }).length, 50);
        assert.equal(indexed(), 50);
        // A later burst is indexed by the writer's timer without any search.
        const more = Array.from({ length: 5 }, (_, i) => msg("alice", `wombat ${i}`, { to: "bob" }));
        writer.addMessages(more, more.at(-1)!.cursor);
        const deadline = Date.now() + 10_000;
        while (queued() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        assert.equal(queued(), 0, "indexed after the burst");
        assert.equal(indexed(), 55);
        // A burst larger than a slice: the background catch-up goes a slice at a time, each
        // slice indexing the first ids of the queue and taking exactly those out of it.
        const big = Array.from({ length: 150 }, (_, i) => msg("alice", `numbat ${i}`, { to: "bob" }));
        reader.addMessages(big, big.at(-1)!.cursor);
        assert.equal(reader.searchIndex.catchUpSome(64), true);
        assert.equal([queued(), indexed()].join(), "86,119");
        assert.equal(reader.searchIndex.catchUpSome(64), true);
        assert.equal(reader.searchIndex.catchUpSome(64), false, "the last slice leaves nothing");
        assert.equal([queued(), indexed()].join(), "0,205");
        assert.equal(reader.searchIndex.catchUpSome(64), false);
        assert.equal(searchMessages(writer, "numbat", { limit: 1000 }).length, 150, "each indexed once");
        const more2 = Array.from({ length: 200 }, (_, i) => msg("alice", `dingo ${i}`, { to: "bob" }));
        writer.addMessages(more2, more2.at(-1)!.cursor);
        const deadline2 = Date.now() + 10_000;
        while (queued() > 0 && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
        assert.equal(indexed(), 405, "the timer's slices index a burst of several slices");
      } finally {
        raw.close();
        await writer.close();
        await reader.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
