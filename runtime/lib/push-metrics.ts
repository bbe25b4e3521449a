/**
 * A one-shot run's metrics, pushed to the Pushgateway as it ends: Prometheus scrapes processes
 * that keep running, and an ingest run has exited before any scrape would find it. The group is
 * job "ingest" and the seed, so each seed's last run replaces its previous one (PUT), and the run
 * adds the time it ended successfully, which the DAG's staleness alert could read.
 * A push that fails is the gateway's or the network's fault, not the run's: the pages are
 * already stored, so it is logged and the run still succeeds (the next run pushes again).
 */
import { Pushgateway, type Registry } from "prom-client";
import { registryGauge } from "./metrics";
import type { Logger } from "./logger";

export interface PushTarget {
  url: string;
  job: string;
  grouping: Record<string, string>;
  timeoutMs?: number;
}

/** Pushes `registry` with the end time; resolves true when the gateway took it. Never throws. */
export async function pushRunMetrics(registry: Registry, target: PushTarget, log: Logger): Promise<boolean> {
  const name = "pipeline_run_last_success_timestamp_seconds";
  const ended = registryGauge(registry, name, "When the last one-shot run ended without error (Unix seconds)");
  ended.set(Date.now() / 1000);
  const gateway = new Pushgateway(target.url, { timeout: target.timeoutMs ?? 10_000 }, registry);
  try {
    await gateway.push({ jobName: target.job, groupings: target.grouping });
    log.info({ pushgateway: target.url, job: target.job, ...target.grouping }, "run metrics pushed");
    return true;
  } catch (e) {
    log.warn(
      { pushgateway: target.url, err: (e as Error).message },
      "run metrics not pushed (the run itself succeeded)",
    );
    return false;
  }
}
