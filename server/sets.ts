/** The distinct names of `xs`, in first-seen order. */
export function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** True when `a` and `b` hold the same names and `a` holds none twice. */
export function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a);
  const y = new Set(b);
  return x.size === y.size && a.length === x.size && [...x].every((v) => y.has(v));
}
