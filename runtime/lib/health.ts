/** What /healthz reports: each worker marks itself failing (with why) or fine. */
const failing = new Map<string, string>();

export function markFailing(worker: string, reason: string): void {
  failing.set(worker, reason);
}

export function markHealthy(worker: string): void {
  failing.delete(worker);
}

export function healthProblems(): Record<string, string> {
  return Object.fromEntries(failing);
}

export function isHealthy(): boolean {
  return failing.size === 0;
}
