import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type HistoryItem, itemRows } from "../../tui/history-layout.js";
import { withSystemLines } from "../../tui/system-lines.js";

const msg = (id: string, ord: string, time: string): HistoryItem => ({
  id,
  from: "carol",
  text: id,
  time,
  ord,
  verified: true,
  problem: null,
  delivery: null,
  error: null,
});

/** System lines in the TUI's history pane (issue 17): placed by time, dim rows, never a message. */
describe("TUI system lines (tui/system-lines.ts)", () => {
  const m1 = msg("one", "10", "2026-01-01T00:00:01.000Z");
  const m2 = msg("two", "20", "2026-01-01T00:00:03.000Z");
  const pending = {
    ...msg("mine", "0", "2026-01-01T00:00:05.000Z"),
    ord: null,
    delivery: "pending" as const,
  };
  const lines = [
    { id: "l2", at: "2026-01-01T00:00:04.000Z", text: "alice made bob an admin" },
    { id: "l0", at: "2026-01-01T00:00:00.000Z", text: "alice added bob" },
    { id: "l1", at: "2026-01-01T00:00:02.000Z", text: "bob left" },
  ];

  it("places lines by time among stored messages, before pending sends, replacing earlier placements", () => {
    const items = withSystemLines([m1, m2, pending], lines, true);
    assert.deepEqual(
      items.map((i) => i.id),
      ["l0", "one", "l1", "two", "l2", "mine"],
    );
    assert.deepEqual(
      items.filter((i) => i.system).map((i) => i.ord),
      ["0", "10", "20"],
      "each takes the mailbox position of the message before it",
    );
    const again = withSystemLines(items, [lines[1]!], true);
    assert.deepEqual(
      again.map((i) => i.id),
      ["l0", "one", "two", "mine"],
    );
  });

  it("while older messages are not loaded, lines older than the first loaded one wait", () => {
    const items = withSystemLines([m1, m2], lines, false);
    assert.deepEqual(
      items.map((i) => i.id),
      ["one", "l1", "two", "l2"],
    );
  });

  it("draws a dim system row with no author, mark or id to select, and sanitizes its text", () => {
    const [line] = withSystemLines(
      [],
      [{ id: "x", at: "2026-01-01T00:00:00.000Z", text: 'alice renamed the group to "a\u001b[2Jb"' }],
      true,
    );
    const rows = itemRows(line!, line, 80);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.kind, "system");
    const label = (rows[0] as { label: string }).label;
    assert.ok(label.startsWith("— alice renamed the group to"));
    assert.ok(!label.includes("\u001b"), "no raw escape reaches the terminal");
  });
});
