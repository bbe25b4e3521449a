import assert from "node:assert/strict";
import type { ProducerRecord, RecordMetadata } from "kafkajs";
import { classify } from "../../../runtime/lib/errors";
import { createLogger } from "../../../runtime/lib/logger";
import { keyPartitioner } from "../../../runtime/lib/produce-acks";
import { ReplaySender, type Replayable, type ReplayProducer } from "../../../runtime/processor/replay-sender";

const log = createLogger("replay-sender-test", "silent");
const TOPIC = "users_created";
const PARTITIONS = 6;

/** What one send does: answer with acks (given the partitions it was asked for), or throw. */
type Behaviour = (partitions: number[]) => RecordMetadata[];
const ackAll: Behaviour = (ps) => [...new Set(ps)].map((partition) => ({ topicName: TOPIC, partition, errorCode: 0 }));

/** Producers whose sends follow the queued behaviours (then: ack all); what each producer did. */
function fakeProducers(behaviours: Behaviour[]) {
  const producers: { sends: number; disconnected: boolean }[] = [];
  const sent: ProducerRecord[] = [];
  const newProducer = (): ReplayProducer => {
    const state = { sends: 0, disconnected: false };
    producers.push(state);
    return {
      connect: async () => undefined,
      disconnect: async () => void (state.disconnected = true),
      send: async (record: ProducerRecord) => {
        assert.equal(state.disconnected, false, "a send on a producer already thrown away");
        state.sends++;
        sent.push(record);
        return (behaviours.shift() ?? ackAll)(record.messages.map((m) => m.partition!));
      },
    };
  };
  return { producers, sent, newProducer };
}

const records = (n: number, keyless = 0): Replayable[] => [
  ...Array.from({ length: n }, (_x, i) => ({
    key: Buffer.from(`00000000-0000-4000-8000-${String(i).padStart(12, "0")}`),
    value: Buffer.from("v"),
    headers: {},
  })),
  ...Array.from({ length: keyless }, () => ({ key: null, value: Buffer.from("k"), headers: {} })),
];

/** A sender over the fake producers, with 1 ms pauses (and `attempts`, or the default 5). */
const senderOf = (f: { newProducer: () => ReplayProducer }, attempts?: number) =>
  new ReplaySender({ topic: TOPIC, partitions: PARTITIONS, newProducer: f.newProducer, log, attempts, pauseMs: 1 });

describe("runtime: the DLQ replay's sender", () => {
  it("sends each keyed record to its key's partition and a keyless one to a partition of its own choosing", async () => {
    const f = fakeProducers([]);
    const sender = senderOf(f);
    await sender.send(records(20, 3));
    const partitionOf = keyPartitioner(TOPIC, PARTITIONS);
    const msgs = f.sent[0].messages;
    for (const m of msgs.slice(0, 20)) assert.equal(m.partition, partitionOf(m.key as Buffer));
    assert.deepEqual(
      msgs.slice(20).map((m) => m.partition),
      [0, 1, 2],
    );
    assert.equal(f.producers.length, 1);
  });

  it("a send resolved without one partition's ack is sent again on a new producer", async () => {
    const missingOne: Behaviour = (ps) => ackAll(ps).slice(1);
    const f = fakeProducers([missingOne]);
    const sender = senderOf(f);
    await sender.send(records(50));
    assert.equal(f.sent.length, 2, "sent again");
    assert.equal(f.producers.length, 2, "on a new producer");
    assert.equal(f.producers[0].disconnected, true, "the first producer thrown away");
  });

  it("a failed send is retried on a new producer; when the attempts are spent it fails as infrastructure, naming the fix", async () => {
    const down: Behaviour = () => {
      throw Object.assign(new Error("Connection error: connect ECONNREFUSED"), { name: "KafkaJSConnectionError" });
    };
    const f = fakeProducers([down, down, down]);
    const sender = senderOf(f, 3);
    await assert.rejects(sender.send(records(5)), (e: unknown) => {
      assert.equal(classify(e), "infrastructure");
      assert.match((e as Error).message, /after 3 attempts.*run the same replay again/);
      return true;
    });
    assert.equal(f.producers.length, 3);
    assert.ok(
      f.producers.every((p) => p.disconnected && p.sends === 1),
      "one send per producer, each thrown away",
    );
  });

  it("a programming error (not authorized) is thrown at once, not retried", async () => {
    const denied: Behaviour = () => {
      throw Object.assign(new Error("Not authorized to access topics"), {
        name: "KafkaJSProtocolError",
        type: "TOPIC_AUTHORIZATION_FAILED",
        retriable: false,
      });
    };
    const f = fakeProducers([denied]);
    const sender = senderOf(f);
    await assert.rejects(sender.send(records(5)), /Not authorized/);
    assert.equal(f.sent.length, 1);
  });
});
