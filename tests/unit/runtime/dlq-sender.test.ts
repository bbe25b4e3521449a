import assert from "node:assert/strict";
import type { Message, ProducerRecord, RecordMetadata } from "kafkajs";
import { classify } from "../../../runtime/lib/errors";
import { createLogger } from "../../../runtime/lib/logger";
import type { MessageLimit } from "../../../runtime/lib/kafka";
import type { DlqEnvelope } from "../../../runtime/processor/dlq";
import {
  DlqDelivery,
  DlqRefusedError,
  DlqSender,
  LETTER_ID_HEADER,
  type DeadLetter,
  type DlqProducer,
  type DlqTopic,
} from "../../../runtime/processor/dlq-sender";

const log = createLogger("dlq-sender-test", "silent");
const PARTITIONS = 6;

/** A kafkajs protocol error as the producer throws it. */
function kafkaError(type: string, retriable: boolean): Error {
  return Object.assign(new Error(type), { name: "KafkaJSProtocolError", type, retriable });
}

/** What one send call does: write its messages (or some), answer, or throw. */
type Behaviour = (record: ProducerRecord, write: (m: Message) => void) => RecordMetadata[] | Promise<RecordMetadata[]>;

/** The DLQ as a list of records, and producers whose sends follow the queued behaviours (then: all written). */
class FakeDlq implements DlqTopic {
  readonly name = "users_created.dlq";
  readonly written: Message[] = [];
  readonly producers: { sends: number; disconnected: boolean }[] = [];
  readonly behaviours: Behaviour[] = [];
  limit: MessageLimit = { bytes: 1_048_588, source: "message.max.bytes 1048588 of the brokers" };
  inFlight = 0;
  maxInFlight = 0;
  reads = 0;

  newProducer(): DlqProducer {
    const state = { sends: 0, disconnected: false };
    this.producers.push(state);
    return {
      connect: async () => undefined,
      disconnect: async () => void (state.disconnected = true),
      send: async (record: ProducerRecord) => {
        assert.equal(state.disconnected, false, "a send on a producer already thrown away");
        state.sends++;
        this.inFlight++;
        this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
        try {
          await new Promise((r) => setTimeout(r, 5));
          const behaviour = this.behaviours.shift() ?? writeAll;
          return await behaviour(record, (m) => this.written.push(m));
        } finally {
          this.inFlight--;
        }
      },
    } as unknown as DlqProducer;
  }

  async endOffsets(): Promise<Map<number, string>> {
    return new Map(Array.from({ length: PARTITIONS }, (_x, p) => [p, String(this.written.length)]));
  }

  async messageLimit(): Promise<MessageLimit> {
    return this.limit;
  }

  async letterIdsSince(): Promise<Set<string>> {
    this.reads++;
    return new Set(this.written.map((m) => String((m.headers ?? {})[LETTER_ID_HEADER])));
  }

  sources(): string[] {
    return this.written.map((m) => (JSON.parse(String(m.value)) as DlqEnvelope).source.offset);
  }
}

const acks = (messages: Message[]) =>
  [...new Set(messages.map((m) => m.partition ?? -1))].map((partition) => ({
    topicName: "users_created.dlq",
    partition,
    errorCode: 0,
  }));
const writeAll: Behaviour = (record, write) => {
  record.messages.forEach(write);
  return acks(record.messages);
};

function letter(offset: number, key: string | null = `key-${offset}`, value = Buffer.from(`not avro ${offset}`)) {
  const keyBytes = key === null ? null : Buffer.from(key);
  const source = { topic: "users_created", partition: 1, offset: String(offset), key: keyBytes, value };
  return { source, reason: "decode: not avro" } satisfies DeadLetter;
}

describe("processor: the DLQ sender", () => {
  it("sends each letter once, on the partition of its key, with a letter id", async () => {
    const dlq = new FakeDlq();
    await new DlqSender(dlq, log).send([letter(1), letter(2), letter(3, null)], new DlqDelivery());
    assert.deepEqual(dlq.sources(), ["1", "2", "3"]);
    const partitions = dlq.written.map((m) => m.partition ?? -1);
    assert.ok(partitions.every((p) => p >= 0 && p < PARTITIONS));
    assert.equal(dlq.written[2].partition, 1, "a letter without a key goes to its source's partition");
    assert.equal(new Set(dlq.written.map((m) => (m.headers ?? {})[LETTER_ID_HEADER])).size, 3);
  });

  it("after a failed send the next one goes on a new producer (never the failed one's sequence numbers)", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    dlq.behaviours.push(() => {
      throw kafkaError("OUT_OF_ORDER_SEQUENCE_NUMBER", false);
    });
    const delivery = new DlqDelivery();
    await assert.rejects(sender.send([letter(1)], delivery), (e: unknown) => classify(e) === "infrastructure");
    await sender.send([letter(1)], delivery);
    assert.equal(dlq.producers.length, 2);
    assert.deepEqual(
      dlq.producers.map((p) => [p.sends, p.disconnected]),
      [
        [1, true],
        [1, false],
      ],
    );
    assert.deepEqual(dlq.sources(), ["1"]);
  });

  it("several partitions' sends go one at a time; one queued behind a failed send uses a new producer", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    dlq.behaviours.push(() => {
      throw Object.assign(new Error("Request timed out"), { name: "KafkaJSRequestTimeoutError" });
    });
    const results = await Promise.allSettled([
      sender.send([letter(1)], new DlqDelivery()),
      sender.send([letter(2)], new DlqDelivery()),
      sender.send([letter(3)], new DlqDelivery()),
    ]);
    assert.deepEqual(
      results.map((r) => r.status),
      ["rejected", "fulfilled", "fulfilled"],
    );
    assert.equal(dlq.maxInFlight, 1);
    assert.deepEqual(
      dlq.producers.map((p) => p.sends),
      [1, 2],
    );
    assert.deepEqual(dlq.sources(), ["2", "3"]);
  });

  it("a partition missing from the answer fails the send; the retry sends only that partition's letters", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    let skipped = -1;
    // kafkajs resolved without one partition's answer (its leader moved mid-send): that partition not written
    dlq.behaviours.push((record, write) => {
      skipped = record.messages[record.messages.length - 1].partition ?? -1;
      const kept = record.messages.filter((m) => m.partition !== skipped);
      kept.forEach(write);
      return acks(kept);
    });
    const letters = [letter(1, "a"), letter(2, "b"), letter(3, "c"), letter(4, "d")];
    const delivery = new DlqDelivery();
    await assert.rejects(sender.send(letters, delivery), /without an ack for partition/);
    await sender.send(letters, delivery);
    assert.deepEqual([...dlq.sources()].sort(), ["1", "2", "3", "4"], "each letter once");
    assert.equal(dlq.producers.length, 2);
  });

  it("a chunk retried after its letters were acknowledged (Cassandra failed) sends none of them again", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    const delivery = new DlqDelivery();
    await sender.send([letter(1), letter(2)], delivery);
    await sender.send([letter(1), letter(2)], delivery);
    assert.deepEqual(dlq.sources(), ["1", "2"]);
    assert.equal(dlq.producers[0].sends, 1);
  });

  it("a send that failed after the broker wrote it: the retry finds its letters on the DLQ, none twice", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    dlq.behaviours.push((record, write) => {
      record.messages.forEach(write);
      throw Object.assign(new Error("Request timed out"), { name: "KafkaJSRequestTimeoutError" });
    });
    const delivery = new DlqDelivery();
    await assert.rejects(sender.send([letter(1), letter(2)], delivery));
    await sender.send([letter(1), letter(2), letter(3)], delivery);
    assert.deepEqual(dlq.sources(), ["1", "2", "3"]);
    assert.equal(dlq.reads, 1);
  });

  it("refused as too large (limit lowered): retried with the limit read again, value as sha256", async () => {
    const dlq = new FakeDlq();
    const sender = new DlqSender(dlq, log);
    const big = letter(1, "k", Buffer.alloc(200_000, 7));
    await sender.send([letter(0)], new DlqDelivery()); // the limit is read: 1 MiB
    dlq.limit = { bytes: 100_000, source: "max.message.bytes 100000 of users_created.dlq" };
    dlq.behaviours.push((record, write) => {
      const small = record.messages.filter((m) => String(m.value).length < 100_000);
      small.forEach(write);
      throw kafkaError("MESSAGE_TOO_LARGE", false);
    });
    const delivery = new DlqDelivery();
    await assert.rejects(sender.send([letter(2), big], delivery), (e: unknown) => {
      assert.ok(e instanceof DlqRefusedError, String(e));
      assert.equal(classify(e), "infrastructure");
      assert.match(e.message, /refused 2 dead letter\(s\): MESSAGE_TOO_LARGE/);
      return true;
    });
    await sender.send([letter(2), big], delivery);
    assert.deepEqual(dlq.sources(), ["0", "2", "1"]);
    const envelope = JSON.parse(String(dlq.written[2].value)) as DlqEnvelope;
    assert.equal(envelope.value_base64, null);
    assert.equal(envelope.value_bytes, 200_000);
  });

  it("a letter that cannot fit the DLQ: DlqRefusedError (retried), sent once the limit is raised", async () => {
    const dlq = new FakeDlq();
    dlq.limit = { bytes: 2_000, source: "max.message.bytes 2000 of users_created.dlq" };
    const withLongReason = { ...letter(1), reason: "decode: " + "x".repeat(3_000) };
    const sender = new DlqSender(dlq, log);
    const delivery = new DlqDelivery();
    await assert.rejects(sender.send([withLongReason], delivery), (e: unknown) => {
      assert.ok(e instanceof DlqRefusedError);
      assert.match(e.message, /needs \d+ bytes, users_created.dlq takes max.message.bytes 2000/);
      return true;
    });
    assert.equal(dlq.producers.length, 0);
    // the operator raises the limit: the next attempt reads it again (not a minute later)
    dlq.limit = { bytes: 1_048_588, source: "message.max.bytes 1048588 of the brokers" };
    await sender.send([withLongReason], delivery);
    assert.deepEqual(dlq.sources(), ["1"]);
  });

  it("our mistake (no right to write the DLQ) is not retried as a dependency: thrown as it is", async () => {
    const dlq = new FakeDlq();
    dlq.behaviours.push(() => {
      throw kafkaError("TOPIC_AUTHORIZATION_FAILED", false);
    });
    const sent = new DlqSender(dlq, log).send([letter(1)], new DlqDelivery());
    await assert.rejects(sent, (e: unknown) => classify(e) === "programming");
  });
});
