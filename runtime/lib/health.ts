/**
 * What /healthz reports: each loop of a worker (e.g. "relay[0]", "relay[1]", "processor",
 * "ingest") marks itself failing (with why) or fine, under its own key, so one loop's success
 * never clears another's failure. A loop that works on several partitions at once (the processor)
 * keeps a key per partition (partitionKey), for the same reason.
 */
const failing = new Map<string, string>();

export function markFailing(loop: string, reason: string): void {
  failing.set(loop, reason);
}

export function markHealthy(loop: string): void {
  failing.delete(loop);
}

/** The key of one partition of a loop: its chunks fail and succeed apart from the others'. */
export function partitionKey(loop: string, partition: number): string {
  return `${loop}[partition ${partition}]`;
}

/**
 * After a rebalance: forget the failures of the loop's partitions that are no longer assigned to
 * it (another member retries them now and reports its own health); the others stay failing.
 */
export function keepPartitions(loop: string, assigned: readonly number[]): void {
  const keep = new Set(assigned.map((p) => partitionKey(loop, p)));
  const prefix = `${loop}[partition `;
  for (const key of [...failing.keys()]) if (key.startsWith(prefix) && !keep.has(key)) failing.delete(key);
}

export function healthProblems(): Record<string, string> {
  return Object.fromEntries(failing);
}

export function isHealthy(): boolean {
  return failing.size === 0;
}
