/** Counters read from the Prometheus `/metrics` of the stack's processes, to explain the CPU figures. */
export type Samples = Map<string, number>;

export async function scrape(url: string): Promise<Samples> {
  const out: Samples = new Map();
  try {
    const text = await (await fetch(url, { signal: AbortSignal.timeout(5000) })).text();
    for (const line of text.split("\n")) {
      if (line.startsWith("#") || line.trim() === "") continue;
      const cut = line.lastIndexOf(" ");
      const value = Number(line.slice(cut + 1));
      if (Number.isFinite(value)) out.set(line.slice(0, cut), value);
    }
  } catch {
    // A figure that needs it will come out as NaN.
  }
  return out;
}

/** Sum of every sample whose name (with labels) starts with `prefix` and contains each of `having`. */
export function total(samples: Samples[], prefix: string, ...having: string[]): number {
  let sum = 0;
  for (const s of samples)
    for (const [k, v] of s) if (k.startsWith(prefix) && having.every((h) => k.includes(h))) sum += v;
  return sum;
}

/** The largest sample named `name` (without labels) in any process; NaN when none has it. */
export function largest(samples: Samples[], name: string): number {
  let most = Number.NaN;
  for (const s of samples) {
    const v = s.get(name);
    if (v !== undefined && !(v <= most)) most = v;
  }
  return most;
}

export async function scrapeAll(urls: string[]): Promise<Samples[]> {
  return Promise.all(urls.map(scrape));
}

/** The change of a sum between two scrapes. */
export function delta(before: Samples[], after: Samples[], prefix: string, ...having: string[]): number {
  return total(after, prefix, ...having) - total(before, prefix, ...having);
}

/**
 * The q-quantile of a histogram's observations between two scrapes, summed over processes, as
 * the upper bound of the bucket it falls in (Prometheus `le`; Infinity past the last bucket), over
 * the samples whose labels hold each of `having`.
 */
export function histogramQuantile(
  before: Samples[],
  after: Samples[],
  name: string,
  q: number,
  ...having: string[]
): number {
  const labels = new Set<string>();
  for (const s of after)
    for (const k of s.keys()) {
      const m =
        k.startsWith(`${name}_bucket{`) && having.every((h) => k.includes(h)) ? /le="[^"]+"/.exec(k) : null;
      if (m) labels.add(m[0]);
    }
  const buckets = [...labels]
    .map((label) => ({
      le: label === 'le="+Inf"' ? Infinity : Number(label.slice(4, -1)),
      count: delta(before, after, `${name}_bucket{`, label, ...having),
    }))
    .sort((a, b) => a.le - b.le);
  const all = buckets.at(-1)?.count ?? 0;
  if (all === 0) return Number.NaN;
  for (const b of buckets) if (b.count >= q * all) return b.le;
  return Infinity;
}
