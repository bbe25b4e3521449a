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
    Number.isFinite(r.rate / r.limit)
      ? `${Math.round((100 * r.rate) / r.limit)}%${r.rate / r.limit >= 0.8 ? "" : " (<80%)"}`
      : "-",
    r.limitWhat,
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || i === cells.length - 1 ? c.padEnd(w[i]) : c.padStart(w[i])))
      .join("  ")
      .trimEnd();
  return [line(head), w.map((x) => "-".repeat(x)).join("  "), ...body.map(line)].join("\n");
}

/** A point of a run: at time t (ms), v records done and cpuUs microseconds of CPU used so far. */
export interface Point {
  t: number;
  v: number;
  cpuUs: number;
}

export interface RunFigures {
  /** records ÷ time from the first point with records done to the first point at the final count */
  mean: number;
  /** slope (records/s) of a least-squares line through the points of the middle of the run */
  steady: number;
  /** CPU microseconds per record over the same middle of the run */
  cpuUsPerRecord: number;
  records: number;
}

/**
 * Mean and steady-state rate and CPU per record of a series of points. The middle of the run is
 * the points whose count lies between lo and hi of the final count (10 %..90 %): start-up, the
 * first fill and the last drain are left out, which a 20,000-record run could not afford (they
 * were most of its 4 s). With fewer than 3 points in the middle, the steady rate is the mean.
 */
export function runFigures(points: Point[], lo = 0.1, hi = 0.9): RunFigures {
  const nan = { mean: NaN, steady: NaN, cpuUsPerRecord: NaN, records: points.at(-1)?.v ?? 0 };
  const started = points.filter((p) => p.v > 0);
  if (started.length < 2) return nan;
  const total = started[started.length - 1].v;
  const end = started.find((p) => p.v === total)!;
  const first = started[0];
  const mean = end.t > first.t ? (total - first.v) / ((end.t - first.t) / 1000) : NaN;
  // the middle, with the last point before it and the first after it, so that a run of few, big
  // steps (ingest's pages) still has a line and a CPU window
  const iLo = Math.max(0, points.findIndex((p) => p.v >= lo * total) - 1);
  let iHi = points.findIndex((p) => p.v >= hi * total);
  if (iHi < 0) iHi = points.length - 1;
  const mid = points.slice(iLo, iHi + 1);
  const a = mid[0];
  const b = mid[mid.length - 1];
  const cpuUsPerRecord = b.v > a.v ? (b.cpuUs - a.cpuUs) / (b.v - a.v) : NaN;
  return { mean, steady: mid.length >= 3 ? slope(mid) : mean, cpuUsPerRecord, records: total };
}

/** Least-squares slope of v over t, in records per second. */
export function slope(points: { t: number; v: number }[]): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((s, p) => s + p.t, 0) / n;
  const mv = points.reduce((s, p) => s + p.v, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.t - mt) * (p.v - mv);
    den += (p.t - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 1000;
}

/** This process's CPU (user + system) in microseconds. */
export function ownCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}

/**
 * A recorder of progress for a reference loop run in this process: tick(done) after each unit
 * of work; figures() at the end. Starts with a point at 0 records.
 */
export function recorder(): { tick(done: number): void; figures(): RunFigures; points: Point[] } {
  const points: Point[] = [{ t: performance.now(), v: 0, cpuUs: ownCpuUs() }];
  return {
    points,
    tick: (done) => points.push({ t: performance.now(), v: done, cpuUs: ownCpuUs() }),
    figures: () => runFigures(points),
  };
}

/**
 * The q-quantile (0..1) of a Prometheus histogram between two scrapes (the buckets' increase),
 * as the upper bound of the bucket it falls in: "at most this". NaN without observations.
 */
export function histQuantile(
  before: Map<string, number> | undefined,
  after: Map<string, number> | undefined,
  name: string,
  labels: Record<string, string>,
  q: number,
): number {
  if (!after) return NaN;
  const buckets: [number, number][] = [];
  for (const [k, v] of after) {
    if (!k.startsWith(`${name}_bucket{`)) continue;
    if (!Object.entries(labels).every(([l, val]) => k.includes(`${l}="${val}"`))) continue;
    const le = /le="([^"]+)"/.exec(k)?.[1];
    if (le === undefined) continue;
    buckets.push([le === "+Inf" ? Infinity : Number(le), v - (before?.get(k) ?? 0)]);
  }
  buckets.sort((a, b) => a[0] - b[0]);
  const total = buckets.at(-1)?.[1] ?? 0;
  if (total <= 0) return NaN;
  return buckets.find(([, c]) => c >= q * total)?.[0] ?? NaN;
}
