/** The kill suite's check that its worst case ran (kept apart so that a unit test can watch it fail). */
import assert from "node:assert/strict";

/**
 * The worst case (the processor group's coordinator killed) was tested by at least one broker kill.
 * Both kills may take it: after the first, the group moves to a survivor, which the second may kill.
 */
export function assertCoordinatorKilled(kills: { killed: number; coordinator: number }[]): void {
  const hit = kills.filter((k) => k.killed === k.coordinator).length;
  assert.ok(
    hit >= 1,
    `no broker kill took the processor group's coordinator, the worst case was not tested: ${kills.map((k) => `broker ${k.killed} killed while broker ${k.coordinator} coordinated`).join("; ") || "no broker kill"}`,
  );
}
