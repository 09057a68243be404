// Samples and the figures printed from them: percentiles, medians, ratios, a table.

/** Samples per name (an RPC, a step, "total"), in ms. */
export type Timings = Record<string, number[]>;

export function percentile(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export const median = (values: number[]): number => percentile(values, 50);

export async function timed<T>(t: Timings, name: string, fn: () => Promise<T>): Promise<T> {
  const start = process.hrtime.bigint();
  const out = await fn();
  (t[name] ??= []).push(Number(process.hrtime.bigint() - start) / 1e6);
  return out;
}

/** Appends every sample of `from` to `into`. */
export function merge(into: Timings, from: Timings): void {
  for (const [k, v] of Object.entries(from)) (into[k] ??= []).push(...v);
}

export const ms = (v: number): string => (Number.isFinite(v) ? (v >= 1000 ? `${(v / 1000).toFixed(2)} s` : `${v.toFixed(1)} ms`) : 'n/a');
export const mib = (kib: number): string => `${(kib / 1024).toFixed(0)} MiB`;
export const ratio = (sandlot: number, containerd: number): string =>
  Number.isFinite(sandlot) && Number.isFinite(containerd) && containerd > 0 ? `${(sandlot / containerd).toFixed(2)}×` : 'n/a';

/** Prints rows of equal length as a left-aligned text table under a header. */
export function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(widths[i])).join(' | ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
  for (const r of rows) console.log(line(r));
}
