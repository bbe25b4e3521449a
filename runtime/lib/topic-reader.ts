/** Read a topic's messages from given offsets up to its end offsets at the time of the call. */
import { randomUUID } from "node:crypto";
import type { Kafka, KafkaMessage } from "kafkajs";
import { InfrastructureError } from "./errors";

export async function readFrom(
  kafka: Kafka,
  topic: string,
  from: Map<number, string>,
  each: (partition: number, m: KafkaMessage) => void,
  timeoutMs = 60_000,
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  let ends: Map<number, string>;
  try {
    ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]));
  } finally {
    await admin.disconnect();
  }
  const start = (p: number) => from.get(p) ?? ends.get(p) ?? "0";
  const want = [...ends.entries()].filter(([p, end]) => BigInt(end) > BigInt(start(p)));
  if (want.length === 0) return 0;
  const left = new Map(want.map(([p, end]) => [p, BigInt(end)]));
  // a throwaway group that never commits: kafkajs has no assign(), so subscribe, then seek
  // short fetch waits: a fetch that finds nothing new (a new leader whose high watermark has not
  // caught up yet, right after a broker's death) is asked again at once, not after kafkajs's 5 s
  // (the kill suite's reconciliations took 5.2-7.1 s, one fetch wait, for 39-295 records)
  const consumer = kafka.consumer({
    groupId: `reader-${randomUUID()}`,
    maxBytes: 32 << 20,
    sessionTimeout: 10_000,
    maxWaitTimeInMs: 250,
  });
  let n = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let resolveDone: () => void = () => undefined;
    const done = new Promise<void>((r) => (resolveDone = r));
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const end = left.get(batch.partition);
        if (end === undefined) return;
        for (const m of batch.messages) {
          const off = BigInt(m.offset);
          if (off < BigInt(start(batch.partition)) || off >= end) continue;
          each(batch.partition, m);
          n++;
        }
        const last = batch.messages.length > 0 ? BigInt(batch.messages[batch.messages.length - 1].offset) + 1n : 0n;
        if (last >= end || BigInt(batch.highWatermark) <= BigInt(start(batch.partition))) left.delete(batch.partition);
        if (left.size === 0) resolveDone();
      },
    });
    // only the partitions wanted, each from its own offset: the group is assigned every partition
    // (kafkajs has no assign()), and the others, read from the beginning, were the topic's whole
    // history (46 MB a partition on the kill suite's set: a reconciliation took 7 s, the relay stood still)
    const unwanted = [...ends.keys()].filter((p) => !left.has(p));
    if (unwanted.length > 0) consumer.pause([{ topic, partitions: unwanted }]);
    for (const [p] of want) consumer.seek({ topic, partition: p, offset: start(p) });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      done,
      new Promise(
        (_r, rej) =>
          (timer = setTimeout(
            () =>
              rej(
                new InfrastructureError(
                  `reading ${topic}: ${left.size} partitions not read to their end in ${timeoutMs} ms`,
                ),
              ),
            timeoutMs,
          )),
      ),
    ]).finally(() => clearTimeout(timer));
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
  return n;
}
