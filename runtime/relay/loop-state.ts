/** What a relay's round loops share besides the topic's size limit: the rows Kafka refused, the pending gauge. */
import type { Pool } from "pg";
import type { Logger } from "../lib/logger";
import { metrics } from "../lib/metrics";
import { outboxBacklog } from "./claim";
import { SLOW_ROUND_MS, type SendRefused } from "./round";

/** Rows of a refused send, sent alone afterwards; a row refused alone, parked when claimed again. */
export class Refusals {
  readonly suspects = new Set<string>();
  readonly refused = new Map<string, string>();

  note(e: SendRefused): void {
    if (e.ids.length === 1) this.refused.set(e.ids[0], e.reason);
    else for (const id of e.ids) this.suspects.add(id);
  }

  /** Settled rows (published or parked) leave the sets; a bound keeps rows another relay settled from piling up. */
  settle(ids: string[]): void {
    for (const id of ids) {
      this.suspects.delete(id);
      this.refused.delete(id);
    }
    if (this.suspects.size + this.refused.size > 100_000) {
      this.suspects.clear();
      this.refused.clear();
    }
  }
}

/**
 * The outbox's backlog (two gauges: rows waiting, the oldest one's age), between rounds: logged
 * when it holds the loop up.
 */
export class PendingGauge {
  private countedAt = 0;
  private counting = false;

  constructor(
    private pool: Pool,
    private log: Logger,
  ) {}

  /** Rows waiting; sets both gauges. */
  async count(): Promise<number> {
    const startedAt = performance.now();
    const backlog = await outboxBacklog(this.pool);
    const ms = Math.round(performance.now() - startedAt);
    if (ms >= SLOW_ROUND_MS) this.log.warn({ ms, pending: backlog.pending }, "slow outbox pending count");
    metrics().outboxPending.set(backlog.pending);
    metrics().outboxOldestPendingSeconds.set(backlog.oldestSeconds);
    return backlog.pending;
  }

  /**
   * At most once a second and never awaited: a count over a large outbox whose statistics are
   * stale is a sequential scan (0.4-0.5 s over 400,000 published rows, measured), which would
   * hold every round behind it.
   */
  refreshInBackground(): void {
    if (Date.now() - this.countedAt < 1000 || this.counting) return;
    this.countedAt = Date.now();
    this.counting = true;
    // -1: the count failed (PostgreSQL unreachable); the alert RelayCannotReadOutbox reads it
    void this.count()
      .catch(() => metrics().outboxPending.set(-1))
      .finally(() => (this.counting = false));
  }
}
