/**
 * The processor's dead letters against the real Kafka, on a source topic and a DLQ of the test's
 * own (the processor's `topic` and `dlqTopic` options), so no other run's records are read:
 *  - a DLQ that does not exist yet (auto.create.topics.enable=false): the send fails, the chunk is
 *    retried with its offset kept (never committed past a letter not acknowledged); once the topic
 *    is created every letter is there once and the offset moves on;
 *  - a DLQ whose max.message.bytes is lowered under a running processor: one send writes a small
 *    letter and is refused for a large one (MESSAGE_TOO_LARGE for its partition); the chunk is
 *    retried and sends only the large letter, built to fit (value as size and sha256): no letter
 *    twice, none lost, the offset committed.
 */
import assert from "node:assert/strict";
import { ConfigResourceTypes, type Admin, type Kafka } from "kafkajs";
import { loadConfig, processorSchema } from "../../../runtime/lib/config";
import { healthProblems } from "../../../runtime/lib/health";
import { createLogger } from "../../../runtime/lib/logger";
import { keyPartitioner } from "../../../runtime/lib/produce-acks";
import { readFrom } from "../../../runtime/lib/topic-reader";
import type { DlqEnvelope } from "../../../runtime/processor/dlq";
import { startProcessor, type ProcessorHandle } from "../../../runtime/processor/processor";
import { LIMIT_PROBE, limitApplied } from "../../support/topic-limit";
import { kafka as itKafka, servicesEnv, uniq, waitFor } from "../workers/harness";

describe("processor: dead letters on the real Kafka (the DLQ sender)", function () {
  this.timeout(300_000);
  let k: Kafka;
  let admin: Admin;
  const topics: string[] = [];
  const log = createLogger("dlq-sender-it", "warn");
  let processor: ProcessorHandle | undefined;

  before(async () => {
    servicesEnv();
    k = itKafka();
    admin = k.admin();
    await admin.connect();
  });

  afterEach(async () => {
    await processor?.stop().catch(() => undefined);
    processor = undefined;
  });

  after(async () => {
    await admin?.deleteTopics({ topics }).catch(() => undefined);
    await admin?.disconnect();
  });

  async function createTopic(topic: string, maxMessageBytes?: number): Promise<void> {
    topics.push(topic);
    await admin.createTopics({
      waitForLeaders: true,
      topics: [
        {
          topic,
          numPartitions: 3,
          replicationFactor: 1,
          configEntries: maxMessageBytes ? [{ name: "max.message.bytes", value: String(maxMessageBytes) }] : [],
        },
      ],
    });
  }

  function start(source: string, dlq: string, group: string): ProcessorHandle {
    const env = { ...servicesEnv(), PROCESSOR_GROUP_ID: group, METRICS_PORT: "0", LOG_LEVEL: "warn" };
    return startProcessor({ config: loadConfig(processorSchema, env), log, topic: source, dlqTopic: dlq });
  }

  /** Poison messages (not Avro) on partition 0 of the source topic, one request: one chunk. */
  async function producePoison(source: string, messages: { key: string; value: Buffer }[]): Promise<void> {
    const producer = k.producer();
    await producer.connect();
    try {
      await producer.send({ topic: source, acks: -1, messages: messages.map((m) => ({ ...m, partition: 0 })) });
    } finally {
      await producer.disconnect();
    }
  }

  async function committed(group: string, source: string): Promise<bigint> {
    const [offsets] = await admin.fetchOffsets({ groupId: group, topics: [source] });
    return BigInt(offsets.partitions.find((p) => p.partition === 0)?.offset ?? "-1");
  }

  async function letters(dlq: string): Promise<{ key: string; envelope: DlqEnvelope }[]> {
    const out: { key: string; envelope: DlqEnvelope }[] = [];
    const from = new Map([0, 1, 2].map((p) => [p, "0"]));
    await readFrom(k, dlq, from, (_p, m) => {
      if (String(m.key) === LIMIT_PROBE) return;
      out.push({ key: String(m.key), envelope: JSON.parse(String(m.value)) as DlqEnvelope });
    });
    return out;
  }

  /**
   * A topic's new limit reaches the broker's log a moment after alterConfigs answers (through
   * ZooKeeper): until a record over it is refused, the test's premise does not hold yet.
   */

  const sourceOffsets = (found: { envelope: DlqEnvelope }[]) => found.map((l) => l.envelope.source.offset).sort();

  it("a DLQ that does not exist yet: retried with the offset kept, then each letter there once", async () => {
    const source = uniq("it-dlq-src");
    const dlq = uniq("it-dlq-missing");
    const group = uniq("it-dlq-group");
    await createTopic(source);
    await producePoison(
      source,
      [0, 1, 2].map((i) => ({ key: `poison-${i}`, value: Buffer.from(`not avro ${i}`) })),
    );
    processor = start(source, dlq, group);
    const failingNow = async () => healthProblems()["processor[partition 0]"];
    const failing = await waitFor("the chunk failing on the missing DLQ", failingNow, 120_000, 200);
    // a few more attempts (each waits out kafkajs's retries of the unknown topic, ~6 s)
    await new Promise((r) => setTimeout(r, 15_000));
    assert.equal(await committed(group, source), -1n, `nothing committed while the DLQ refuses (${failing})`);
    assert.ok(healthProblems()["processor[partition 0]"], "still failing: retried, not skipped");

    await createTopic(dlq);
    const pastPoison = async () => (await committed(group, source)) === 3n;
    await waitFor("the offset committed past the poison", pastPoison, 120_000, 500);
    const found = await letters(dlq);
    assert.deepEqual(sourceOffsets(found), ["0", "1", "2"], "each letter once");
    assert.ok(found.every((l) => l.envelope.reason.startsWith("decode: ")));
    assert.equal(healthProblems()["processor[partition 0]"], undefined);
  });

  it("a send half written, half refused (the DLQ's limit lowered): retried, no letter twice, none lost", async () => {
    const source = uniq("it-dlq-src");
    const dlq = uniq("it-dlq-small");
    const group = uniq("it-dlq-group");
    await createTopic(source);
    await createTopic(dlq);
    // two keys whose letters go to different DLQ partitions: one partition written, the other refused
    const partitionOf = keyPartitioner(dlq, 3);
    const small = "small-0";
    let large = "large-0";
    for (let i = 1; partitionOf(large) === partitionOf(small); i++) large = `large-${i}`;

    processor = start(source, dlq, group);
    await producePoison(source, [{ key: "warm-up", value: Buffer.from("not avro: the sender reads the limit") }]);
    await waitFor("the warm-up dead-lettered", async () => (await committed(group, source)) === 1n, 120_000, 500);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: dlq,
          configEntries: [{ name: "max.message.bytes", value: "65536" }],
        },
      ],
    });
    await limitApplied(k, dlq, 65536);
    await producePoison(source, [
      { key: small, value: Buffer.from("not avro, small") },
      { key: large, value: Buffer.alloc(200_000, 0x61) },
    ]);
    await waitFor("the offset committed past both", async () => (await committed(group, source)) === 3n, 120_000, 500);

    const found = await letters(dlq);
    assert.deepEqual(sourceOffsets(found), ["0", "1", "2"], `each letter once: ${found.map((l) => l.key).join(", ")}`);
    const big = found.find((l) => l.key === large);
    assert.ok(big);
    assert.equal(big.envelope.value_base64, null, "the large value kept as its size and sha256");
    assert.equal(big.envelope.value_bytes, 200_000);
    assert.match(big.envelope.value_sha256 ?? "", /^[0-9a-f]{64}$/);
    const smallLetter = found.find((l) => l.key === small);
    assert.equal(Buffer.from(smallLetter?.envelope.value_base64 ?? "", "base64").toString(), "not avro, small");
  });
});
