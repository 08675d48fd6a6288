import { MAX_LIST_PAGE, MAX_REPLY_BYTES } from "../core/protocol/limits.js";

/**
 * Takes serialised entries, in order, until the next one would pass `maxBytes` or `maxCount`
 * (always at least one, so that a large entry is never stuck). Returns the JSON texts taken
 * and whether any entry was left for a next page.
 */
export async function takePage<T>(
  entries: readonly T[],
  serialize: (entry: T) => string | Promise<string>,
  maxBytes = MAX_REPLY_BYTES,
  maxCount = MAX_LIST_PAGE,
): Promise<{ parts: string[]; more: boolean }> {
  const parts: string[] = [];
  let bytes = 0;
  for (const entry of entries) {
    if (parts.length >= maxCount) return { parts, more: true };
    const text = await serialize(entry);
    const size = Buffer.byteLength(text) + 1;
    if (parts.length > 0 && bytes + size > maxBytes) return { parts, more: true };
    parts.push(text);
    bytes += size;
  }
  return { parts, more: false };
}

/** Entries whose name sorts after `after` (exclusive), in name order: where a listing page starts. */
export function namesAfter<T extends { name: string }>(
  entries: readonly T[],
  after: string | undefined,
): T[] {
  return [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .filter((e) => after === undefined || e.name > after);
}
