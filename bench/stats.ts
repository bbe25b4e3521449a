/** Small pure helpers of the benchmark: percentiles, rates from per-record timestamps, the table. */

/** The p-th percentile (0..100) of `xs` by nearest rank; NaN for an empty list. */
export function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)));
  return s[rank - 1];
}

/**
 * Sustained rate from the times (ms) at which each record was handled, when records are handled
 * in rounds stamped with the round's START (PostgreSQL now() of a transaction) or one by one
 * (Cassandra WRITETIME): the records of every round but the last were done between the first and
 * the last stamp, so rate = (n − records of the last stamp) / (last − first). NaN if < 2 stamps.
 */
export function spanRate(timesMs: number[]): number {
  if (timesMs.length < 2) return NaN;
  let min = Infinity;
  let max = -Infinity;
  for (const t of timesMs) {
    if (t < min) min = t;
    if (t > max) max = t;
  }
  if (max === min) return NaN;
  const atMax = timesMs.filter((t) => t === max).length;
  return (timesMs.length - atMax) / ((max - min) / 1000);
}

export interface Row {
  worker: string;
  rate: number;
  limit: number;
  limitWhat: string;
}

const n0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "-");

/** The result table, plain text, aligned. */
export function table(rows: Row[]): string {
  const head = ["worker", "records/s", "limit records/s", "ratio", "limit measured as"];
  const body = rows.map((r) => [
    r.worker,
    n0(r.rate),
    n0(r.limit),
    Number.isFinite(r.rate / r.limit) ? `${Math.round((100 * r.rate) / r.limit)}%${r.rate / r.limit >= 0.8 ? "" : " (<80%)"}` : "-",
    r.limitWhat,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join("  ").trimEnd();
  return [line(head), w.map((x) => "-".repeat(x)).join("  "), ...body.map(line)].join("\n");
}
