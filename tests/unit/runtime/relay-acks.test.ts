import assert from "node:assert/strict";
import { assertEveryPartitionAcked } from "../../../runtime/relay/round";

// Keys of the kill suite's round that lost 12 records (2026-11-26 04:54:12): 923c9a14 was found on
// users_created-2 by Kafka's own DumpLogSegments, f0fcf7e3 was one of the 12 meant for it.
const ON_2 = ["923c9a14-993c-455f-88e6-a608c8910a7c", "f0fcf7e3-e20d-4c24-86c1-15a3d9d6d5a6"];
const ack = (...partitions: number[]) => partitions.map((partition) => ({ partition, errorCode: 0 }));

describe("relay: a send kafkajs resolved must have an ack for every partition it covers (assertEveryPartitionAcked)", () => {
  it("places keys as Kafka did (the producer's DefaultPartitioner, 6 partitions): both on partition 2", () => {
    for (const k of ON_2) assert.doesNotThrow(() => assertEveryPartitionAcked([k], 6, ack(2)));
    for (const k of ON_2)
      assert.throws(() => assertEveryPartitionAcked([k], 6, ack(0, 1, 3, 4, 5)), /partition\(s\) 2 of users_created/);
  });

  it("a partition missing from the answer (kafkajs skipped it after its leader moved) fails the round", () => {
    assert.throws(() => assertEveryPartitionAcked(ON_2, 6, []), /without an ack for partition\(s\) 2/);
  });

  it("a partition answered with an error code fails it too; every partition acked passes", () => {
    assert.throws(() => assertEveryPartitionAcked(ON_2, 6, [{ partition: 2, errorCode: 6 }]), /partition\(s\) 2/);
    assert.doesNotThrow(() => assertEveryPartitionAcked(ON_2, 6, ack(0, 1, 2, 3, 4, 5)));
  });
});
