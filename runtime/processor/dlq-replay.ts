/**
 * DLQ replay: dead letters whose cause is fixed go back to users_created, with the key, value and
 * headers the DLQ kept (outbox_id among them: the replayed record keeps its write time).
 *   main dlq-replay [--reason REGEX] [--since ISO] [--until ISO] [--dry-run] [--group G]
 * A letter matches when its reason matches REGEX and its failed_at is within [since, until).
 * Idempotent: the replay reads the DLQ in a consumer group of its own per filter and commits its
 * offsets after each batch is acked, so a second run over the same letters replays none of them.
 * Each replayed record carries `dlq_replayed_from` (DLQ partition/offset), for whoever reads it.
 */
import { createHash, randomUUID } from "node:crypto";
import type { IHeaders, Kafka } from "kafkajs";
import { z } from "zod";
import { DLQ_TOPIC, USERS_TOPIC } from "../contracts/names";
import { commonShape, kafkaShape, loadConfig } from "../lib/config";
import { createKafka } from "../lib/kafka";
import type { Logger } from "../lib/logger";
import type { DlqEnvelope } from "./dlq";
import { kafkaReplayProducer, ReplaySender, type Replayable } from "./replay-sender";

export const DLQ_REPLAY_USAGE =
  "usage: main dlq-replay [--reason REGEX] [--since ISO] [--until ISO] [--dry-run] [--group G]";

export interface ReplayFilter {
  reason?: RegExp;
  since?: Date;
  until?: Date;
}

export interface ReplayOptions extends ReplayFilter {
  dryRun?: boolean;
  /** the consumer group whose offsets mark what was handled; by default one per filter */
  groupId?: string;
  /** where letters are re-published (users_created) */
  topic?: string;
  dlqTopic?: string;
}

export interface ReplaySummary {
  replayed: number;
  skipped: number;
  failed: number;
  failures: string[];
}

export function parseReplayArgs(argv: string[]): ReplayOptions | { error: string } {
  const o: ReplayOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const date = (v: string) => {
      const d = new Date(v);
      if (Number.isNaN(d.getTime())) throw new Error(`${a}: "${v}" is not an ISO time`);
      return d;
    };
    try {
      if (a === "--reason") o.reason = new RegExp(value());
      else if (a === "--since") o.since = date(value());
      else if (a === "--until") o.until = date(value());
      else if (a === "--group") o.groupId = value();
      else if (a === "--dry-run") o.dryRun = true;
      else return { error: `unknown option ${a}` };
    } catch (e) {
      return { error: (e as Error).message };
    }
  }
  return o;
}

/** The group of a filter: the same filter twice is one group, so the second run replays nothing. */
export function replayGroup(f: ReplayFilter): string {
  const key = JSON.stringify([f.reason?.source ?? "", f.since?.toISOString() ?? "", f.until?.toISOString() ?? ""]);
  return `dlq-replay-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
}

export function matches(env: DlqEnvelope, f: ReplayFilter): boolean {
  if (f.reason && !f.reason.test(env.reason)) return false;
  const at = Date.parse(env.failed_at);
  if (f.since && !(at >= f.since.getTime())) return false;
  if (f.until && !(at < f.until.getTime())) return false;
  return true;
}

/** The record a letter was, or why it cannot be replayed. */
export function recordOf(env: DlqEnvelope, from: string): Replayable | { error: string } {
  if (env.value_base64 === null) {
    return { error: `${from}: the value was too large to keep (${env.value_bytes} bytes)` };
  }
  const headers: IHeaders = {};
  for (const [k, v] of Object.entries(env.headers_base64 ?? {})) headers[k] = Buffer.from(v, "base64");
  headers.dlq_replayed_from = from;
  return {
    key: env.key_base64 === null ? null : Buffer.from(env.key_base64, "base64"),
    value: Buffer.from(env.value_base64, "base64"),
    headers,
  };
}

/** Replays the letters from the group's offsets up to the DLQ's end when called. */
export async function replayDlq(kafka: Kafka, log: Logger, o: ReplayOptions): Promise<ReplaySummary> {
  const dlqTopic = o.dlqTopic ?? DLQ_TOPIC;
  const topic = o.topic ?? USERS_TOPIC;
  // a dry run reads in a throwaway group: it must not move the real one
  const groupId = o.dryRun ? `dlq-replay-dry-${randomUUID()}` : (o.groupId ?? replayGroup(o));
  const s: ReplaySummary = { replayed: 0, skipped: 0, failed: 0, failures: [] };
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, bigint>;
  const start = new Map<number, bigint>();
  let partitions: number;
  try {
    partitions = (await admin.fetchTopicOffsets(topic)).length;
    const offsets = await admin.fetchTopicOffsets(dlqTopic);
    ends = new Map(offsets.map((p) => [p.partition, BigInt(p.high)]));
    const committed = o.dryRun
      ? []
      : ((await admin.fetchOffsets({ groupId, topics: [dlqTopic] }))[0]?.partitions ?? []);
    for (const p of offsets) {
      const c = committed.find((x) => x.partition === p.partition);
      start.set(p.partition, c && BigInt(c.offset) >= 0n ? BigInt(c.offset) : BigInt(p.low));
    }
  } finally {
    await admin.disconnect();
  }
  const left = new Set([...ends].filter(([p, end]) => end > (start.get(p) ?? 0n)).map(([p]) => p));
  log.info({ groupId, dlqTopic, topic, partitions: left.size, dryRun: !!o.dryRun }, "dlq replay");
  if (left.size === 0) return s;

  const sender = new ReplaySender({ topic, partitions, newProducer: kafkaReplayProducer(kafka), log });
  // a session long enough for a send retried on its pauses (replay-sender.ts) without losing the group
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 250, sessionTimeout: 30_000 });
  await consumer.connect();
  try {
    await consumer.subscribe({ topic: dlqTopic, fromBeginning: true });
    let resolveDone: () => void = () => undefined;
    let rejectDone: (e: unknown) => void = () => undefined;
    const done = new Promise<void>((res, rej) => ((resolveDone = res), (rejectDone = rej)));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch, heartbeat }) => {
        try {
          const end = ends.get(batch.partition) ?? 0n;
          const from = start.get(batch.partition) ?? 0n;
          const out: Replayable[] = [];
          let last: bigint | undefined;
          for (const m of batch.messages) {
            const off = BigInt(m.offset);
            if (off < from) continue;
            if (off >= end) break;
            last = off;
            const at = `${batch.partition}/${m.offset}`;
            let env: DlqEnvelope;
            try {
              env = JSON.parse((m.value ?? Buffer.alloc(0)).toString()) as DlqEnvelope;
              if (typeof env.reason !== "string" || typeof env.failed_at !== "string") {
                throw new Error("not a dead-letter envelope");
              }
            } catch (e) {
              s.failed++;
              s.failures.push(`${at}: ${(e as Error).message}`);
              continue;
            }
            if (!matches(env, o)) {
              s.skipped++;
              continue;
            }
            const r = recordOf(env, at);
            if ("error" in r) {
              s.failed++;
              s.failures.push(r.error);
              continue;
            }
            out.push(r);
          }
          if (!o.dryRun) await sender.send(out);
          s.replayed += out.length;
          if (last !== undefined && !o.dryRun) {
            // after the send's ack: a crash in between replays these again (upserts: harmless)
            const next = (last + 1n).toString();
            await consumer.commitOffsets([{ topic: dlqTopic, partition: batch.partition, offset: next }]);
          }
          await heartbeat();
          if (last !== undefined && last + 1n >= end) left.delete(batch.partition);
          if (left.size === 0) resolveDone();
        } catch (e) {
          rejectDone(e);
          throw e;
        }
      },
    });
    // partitions a fetch may have moved past already (nothing left in them) are done too
    await done;
  } finally {
    await Promise.all([consumer.disconnect().catch(() => undefined), sender.close()]);
  }
  return s;
}

export function formatReplay(s: ReplaySummary, dryRun = false): string {
  const lines = [`${dryRun ? "would replay" : "replayed"} ${s.replayed}, skipped ${s.skipped}, failed ${s.failed}`];
  for (const f of s.failures.slice(0, 20)) lines.push(`  failed: ${f}`);
  return lines.join("\n");
}

// only Kafka: the letters are bytes again, never decoded here
const replaySchema = z.object({ ...commonShape, KAFKA_BROKERS: kafkaShape.KAFKA_BROKERS });

/** The `dlq-replay` command: 0 done (counts on stdout, then one JSON line), 2 usage; throws on a failure. */
export async function dlqReplayCommand(argv: string[], log: Logger): Promise<number> {
  const c = loadConfig(replaySchema);
  const o = parseReplayArgs(argv);
  if ("error" in o) {
    process.stderr.write(`dlq-replay: ${o.error}\n${DLQ_REPLAY_USAGE}\n`);
    return 2;
  }
  const s = await replayDlq(createKafka(c.KAFKA_BROKERS, "dlq-replay", log), log, o);
  log.info({ ...s, failures: s.failures.length }, "dlq replay done");
  process.stdout.write(`${formatReplay(s, o.dryRun)}\n${JSON.stringify({ ...s, dryRun: !!o.dryRun })}\n`);
  return 0;
}
