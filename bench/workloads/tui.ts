import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { ChatMessage } from "../../core/client/cache.js";
import type { BenchContext } from "../lib/context.js";
import { benchText } from "../lib/text.js";

/**
 * What the TUI exports for this figure (tui/bench-render.tsx): it opens a conversation holding
 * the messages and resolves with the milliseconds until the frame showing the newest one.
 */
type RenderNewestPage = (
  messages: ChatMessage[],
  options: { columns: number; rows: number },
) => Promise<number>;

const META = {
  workload: "TUI",
  label: "render the newest page of a 10,000-message conversation",
  unit: "ms",
  better: "lower" as const,
};

function conversation(count: number, size: number): ChatMessage[] {
  const start = Date.parse("2026-01-01T00:00:00Z");
  return Array.from({ length: count }, (_, i) => {
    const at = new Date(start + i * 1000).toISOString();
    return {
      id: `m${i}`,
      conv: "u:bob",
      from: i % 2 === 0 ? "alice" : "bob",
      to: i % 2 === 0 ? "bob" : "alice",
      group: null,
      text: benchText("tui", i, size),
      sentAt: at,
      serverTime: at,
      cursor: String(i + 1),
      verified: true,
      problem: null,
      seq: i,
      device: "0123456789abcdef",
    };
  });
}

/** Times the TUI's headless render of the newest page; reports "not available" when the TUI has no such export yet. */
export async function tuiRun(ctx: BenchContext): Promise<void> {
  const path = fileURLToPath(new URL("../../tui/bench-render.js", import.meta.url));
  if (!existsSync(path)) {
    ctx.results.unavailable("tui.render", META, "tui/bench-render.tsx (renderNewestPage) does not exist yet");
    return;
  }
  let render: RenderNewestPage | undefined;
  try {
    const mod = (await import(path)) as { renderNewestPage?: RenderNewestPage };
    render = mod.renderNewestPage;
  } catch (err) {
    ctx.results.unavailable(
      "tui.render",
      META,
      `tui/bench-render.js fails to load: ${(err as Error).message}`,
    );
    return;
  }
  if (typeof render !== "function") {
    ctx.results.unavailable("tui.render", META, "tui/bench-render.ts does not export renderNewestPage");
    return;
  }
  const messages = conversation(ctx.sizes.tuiMessages, ctx.sizes.textBytes);
  const size = { columns: 120, rows: 40 };
  try {
    await render(messages, size); // warm-up
    for (let run = 0; run < ctx.runs; run++) {
      const started = performance.now();
      const reported = await render(messages, size);
      // The TUI reports the time to the frame showing the newest message; fall back to the call's duration.
      const ms = typeof reported === "number" ? reported : performance.now() - started;
      ctx.results.add("tui.render", ms, {
        ...META,
        label: `render the newest page of ${messages.length} messages`,
      });
    }
  } catch (err) {
    ctx.results.unavailable(
      "tui.render",
      META,
      `renderNewestPage(messages, {columns, rows}) threw: ${(err as Error).message}`,
    );
  }
}
