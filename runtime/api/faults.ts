/** Switchable faults of the offline API: error rate (429/500), latency, malformed records. */
import { z } from "zod";

export const faultsSchema = z
  .object({
    /** Fraction of requests answered with an error status. */
    errorRate: z.number().min(0).max(1).default(0),
    /** Statuses an error picks from, in turn. */
    errorStatuses: z.array(z.number().int().min(400).max(599)).min(1).default([429, 500]),
    /** The next N requests fail (in turn 429, 500, ...), whatever errorRate says. */
    failNext: z.number().int().min(0).default(0),
    /** Added delay of every answer. */
    latencyMs: z.number().int().min(0).max(600_000).default(0),
    /** Fraction of records broken on purpose (deterministic per seed, page and index). */
    malformedRate: z.number().min(0).max(1).default(0),
  })
  .strict();

export type Faults = z.infer<typeof faultsSchema>;
export type FaultsInput = z.input<typeof faultsSchema>;

export const NO_FAULTS: Faults = faultsSchema.parse({});

/** Query parameters that override the server faults for one request. */
export function faultsFromQuery(q: URLSearchParams, base: Faults): Faults {
  const n = (k: string) => (q.has(k) ? Number(q.get(k)) : undefined);
  return faultsSchema.parse({
    ...base,
    ...(q.has("fault_error_rate") ? { errorRate: n("fault_error_rate") } : {}),
    ...(q.has("fault_latency_ms") ? { latencyMs: n("fault_latency_ms") } : {}),
    ...(q.has("fault_malformed_rate") ? { malformedRate: n("fault_malformed_rate") } : {}),
    failNext: 0,
  });
}

/**
 * Decides, per request, which error to answer (or none). Mutable: failNext counts down.
 */
export class FaultState {
  private faults: Faults;
  private turn = 0;
  constructor(
    initial: FaultsInput = {},
    private readonly random: () => number = Math.random,
  ) {
    this.faults = faultsSchema.parse(initial);
  }
  get(): Faults {
    return { ...this.faults };
  }
  set(f: FaultsInput): Faults {
    this.faults = faultsSchema.parse({ ...this.faults, ...f });
    return this.get();
  }
  /** The error status for this request, or undefined to answer normally. */
  errorFor(f: Faults = this.faults): number | undefined {
    if (this.faults.failNext > 0) {
      this.faults.failNext--;
      return this.nextStatus(f);
    }
    if (f.errorRate > 0 && this.random() < f.errorRate) return this.nextStatus(f);
    return undefined;
  }
  private nextStatus(f: Faults): number {
    return f.errorStatuses[this.turn++ % f.errorStatuses.length];
  }
}
