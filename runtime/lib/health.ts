/**
 * What /healthz reports: each loop of a worker (e.g. "relay[0]", "relay[1]", "processor",
 * "ingest") marks itself failing (with why) or fine, under its own key, so one loop's success
 * never clears another's failure.
 */
const failing = new Map<string, string>();

export function markFailing(loop: string, reason: string): void {
  failing.set(loop, reason);
}

export function markHealthy(loop: string): void {
  failing.delete(loop);
}

export function healthProblems(): Record<string, string> {
  return Object.fromEntries(failing);
}

export function isHealthy(): boolean {
  return failing.size === 0;
}
