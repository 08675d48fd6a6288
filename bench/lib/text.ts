/**
 * Bench message texts carry their run tag and index, `TAG:INDEX:` padded to the wanted size,
 * so a receiver can tell which message arrived, and a second arrival is a duplicate.
 */
export function benchText(tag: string, index: number, size: number): string {
  const head = `${tag}:${index}:`;
  return head.length >= size ? head : head + "x".repeat(size - head.length);
}

export function parseBenchText(text: string): { tag: string; index: number } | null {
  const a = text.indexOf(":");
  const b = a < 0 ? -1 : text.indexOf(":", a + 1);
  if (b < 0) return null;
  const index = Number(text.slice(a + 1, b));
  return Number.isInteger(index) ? { tag: text.slice(0, a), index } : null;
}
