/**
 * DLQ replay against the real Kafka, on topics of the test's own (a DLQ and a target): a letter
 * dead-lettered for a fixable reason is re-published once with its original key, value and headers
 * (outbox_id kept), letters of other reasons are skipped, one whose value was too large to keep is
 * counted failed; a second run of the same filter replays nothing; a dry run publishes nothing.
 */
import assert from "node:assert/strict";
import type { Admin, Kafka, KafkaMessage } from "kafkajs";
import { createLogger } from "../../runtime/lib/logger";
import { readFrom } from "../../runtime/lib/topic-reader";
import { dlqMessage } from "../../runtime/processor/dlq";
import { replayDlq } from "../../runtime/processor/dlq-replay";
import { kafka as itKafka, uniq } from "./workers/harness";

describe("dlq replay (real Kafka)", function () {
  this.timeout(120_000);
  let k: Kafka;
  let admin: Admin;
  const dlqTopic = uniq("it-dlq");
  const topic = uniq("it-replay");
  const log = createLogger("dlq-replay-it", "warn");
  const fixable = "decode: schema id 7 is not in the registry";
  const filter = { reason: /^decode: schema id \d+ is not in the registry/, topic, dlqTopic };

  before(async () => {
    k = itKafka();
    admin = k.admin();
    await admin.connect();
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        { topic: dlqTopic, numPartitions: 2 },
        { topic, numPartitions: 2 },
      ],
    });
    const p = k.producer();
    await p.connect();
    const src = (offset: string, value: Buffer) => ({
      topic: "users_created",
      partition: 1,
      offset,
      key: Buffer.from("k-" + offset),
      value,
      headers: { outbox_id: `9${offset}` },
    });
    await p.send({
      topic: dlqTopic,
      acks: -1,
      messages: [
        dlqMessage(src("10", Buffer.from("good bytes")), fixable),
        dlqMessage(src("11", Buffer.from("bad bytes")), "invalid: id: id must be a UUID"),
        dlqMessage(src("12", Buffer.alloc(600_000, 1)), fixable), // kept as size and sha256 only
      ],
    });
    await p.disconnect();
  });

  after(async () => {
    await admin?.deleteTopics({ topics: [dlqTopic, topic] }).catch(() => undefined);
    await admin?.disconnect();
  });

  async function onTarget(): Promise<KafkaMessage[]> {
    const out: KafkaMessage[] = [];
    await readFrom(
      k,
      topic,
      new Map([
        [0, "0"],
        [1, "0"],
      ]),
      (_p, m) => out.push(m),
    );
    return out;
  }

  it("a dry run counts what it would replay and publishes nothing", async () => {
    const s = await replayDlq(k, log, { ...filter, dryRun: true });
    assert.deepEqual([s.replayed, s.skipped, s.failed], [1, 1, 1]);
    assert.equal((await onTarget()).length, 0);
  });

  it("replays the fixable letter once with its key, value and headers; counts the rest", async () => {
    const s = await replayDlq(k, log, filter);
    assert.deepEqual([s.replayed, s.skipped, s.failed], [1, 1, 1], JSON.stringify(s));
    assert.match(s.failures[0], /too large to keep \(600000 bytes\)/);
    const msgs = await onTarget();
    assert.equal(msgs.length, 1);
    assert.equal(msgs[0].key?.toString(), "k-10");
    assert.equal(msgs[0].value?.toString(), "good bytes");
    assert.equal(String(msgs[0].headers?.outbox_id), "910", "the original header, so the record keeps its write time");
    assert.match(String(msgs[0].headers?.dlq_replayed_from), /^\d+\/\d+$/);
  });

  it("a second run of the same filter replays nothing", async () => {
    const s = await replayDlq(k, log, filter);
    assert.deepEqual([s.replayed, s.skipped, s.failed], [0, 0, 0], JSON.stringify(s));
    assert.equal((await onTarget()).length, 1);
  });
});
