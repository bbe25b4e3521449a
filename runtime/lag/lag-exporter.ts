/**
 * The lag exporter: every LAG_INTERVAL_MS, each watched consumer group's committed offsets against
 * its topics' end offsets, under kafka_exporter's metric names (danielqsj/kafka_exporter), so the
 * alert rules (infra/monitoring) read the same series from either. Why our own: kafka_exporter
 * cannot be had here (not on the Go module proxy, no container registry), and the watcher must
 * run outside the processor: the processor's own pipeline_consumer_lag stops when it does.
 */
import type { Admin } from "kafkajs";
import type { Gauge } from "prom-client";
import type { LagConfig } from "../lib/config";
import { classify, describe } from "../lib/errors";
import { markFailing, markHealthy } from "../lib/health";
import { createKafka } from "../lib/kafka";
import { createLogger, type Logger } from "../lib/logger";
import { metrics, registryGauge } from "../lib/metrics";
import { untilAvailable } from "../lib/retry";
import { sleep } from "../lib/sleep";

export interface LagOptions {
  config: LagConfig;
  log?: Logger;
  signal?: AbortSignal;
  /** Stop after this many rounds (tests); default: until the signal. */
  rounds?: number;
}

export interface LagSummary {
  rounds: number;
  failedRounds: number;
}

/** One round's reading: group -> topic -> partition -> [committed, end]. */
export type LagReading = Map<string, Map<string, Map<number, { committed: number; end: number }>>>;

/** The groups' committed offsets and their topics' ends, from one admin client. */
export async function readLag(admin: Admin, groups: string[]): Promise<LagReading> {
  const ends = new Map<string, Map<number, number>>();
  const endsOf = async (topic: string) => {
    let e = ends.get(topic);
    if (!e) {
      try {
        e = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
      } catch (err) {
        // a topic deleted since the group committed on it: left out, the other topics still read
        if ((err as { type?: string }).type !== "UNKNOWN_TOPIC_OR_PARTITION") throw err;
        e = new Map();
      }
      ends.set(topic, e);
    }
    return e;
  };
  const reading: LagReading = new Map();
  for (const group of groups) {
    const byTopic = new Map<string, Map<number, { committed: number; end: number }>>();
    // no topics given: every topic the group has committed offsets on
    for (const t of await admin.fetchOffsets({ groupId: group })) {
      const e = await endsOf(t.topic);
      const parts = new Map<number, { committed: number; end: number }>();
      for (const p of t.partitions) {
        const committed = Number(p.offset);
        const end = e.get(p.partition);
        // -1: nothing committed on that partition yet (kafka_exporter leaves it out too); no end: the topic is gone
        if (committed >= 0 && end !== undefined) parts.set(p.partition, { committed, end });
      }
      byTopic.set(t.topic, parts);
    }
    reading.set(group, byTopic);
  }
  return reading;
}

/** The process registry's gauge of that name, made once (a second exporter in one process reuses it). */
const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]): Gauge<L> =>
  registryGauge(metrics().registry, name, help, labelNames);

function gauges() {
  const labelNames = ["consumergroup", "topic", "partition"] as const;
  return {
    lag: gauge("kafka_consumergroup_lag", "Messages a consumer group is behind a partition's end", labelNames),
    current: gauge(
      "kafka_consumergroup_current_offset",
      "A consumer group's committed offset on a partition",
      labelNames,
    ),
    end: gauge("kafka_topic_partition_current_offset", "A partition's end offset", ["topic", "partition"] as const),
  };
}

/**
 * Reads every LAG_INTERVAL_MS until the signal; Kafka unreachable marks /healthz failing and is read again next round.
 */
export async function runLagExporter(o: LagOptions): Promise<LagSummary> {
  const c = o.config;
  const log = o.log ?? createLogger("lag", c.LOG_LEVEL);
  const g = gauges();
  const admin = createKafka(c.KAFKA_BROKERS, "lag-exporter", log).admin();
  const wait = { signal: o.signal, log, health: "lag" };
  await untilAvailable("kafka: admin connect", () => admin.connect(), wait);
  const s: LagSummary = { rounds: 0, failedRounds: 0 };
  try {
    while (!o.signal?.aborted && (o.rounds === undefined || s.rounds + s.failedRounds < o.rounds)) {
      try {
        const reading = await readLag(admin, c.LAG_GROUPS);
        // Set anew from this reading alone, in one synchronous step (no scrape sees a gap): a
        // group's offsets that expired or a topic deleted leave no frozen series behind.
        g.lag.reset();
        g.current.reset();
        g.end.reset();
        for (const [group, topics] of reading) {
          for (const [topic, parts] of topics) {
            for (const [partition, { committed, end }] of parts) {
              const labels = { consumergroup: group, topic, partition: String(partition) };
              g.lag.set(labels, Math.max(0, end - committed));
              g.current.set(labels, committed);
              g.end.set({ topic, partition: String(partition) }, end);
            }
          }
        }
        s.rounds++;
        markHealthy("lag");
      } catch (e) {
        if (classify(e) !== "infrastructure") throw e;
        s.failedRounds++;
        markFailing("lag", `kafka: ${describe(e)}`);
        log.warn({ err: describe(e) }, "lag not read this round (infrastructure); reading again next round");
      }
      await sleep(c.LAG_INTERVAL_MS, o.signal);
    }
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  return s;
}
