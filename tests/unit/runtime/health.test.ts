import assert from "node:assert/strict";
import {
  healthProblems,
  isHealthy,
  keepPartitions,
  markFailing,
  markHealthy,
  partitionKey,
} from "../../../runtime/lib/health";

describe("health: per loop, and per partition in the processor", () => {
  afterEach(() => {
    for (const k of Object.keys(healthProblems())) markHealthy(k);
  });

  it("one partition's stored chunk does not clear another partition's failure", () => {
    // the processor's sequence: partition 1's chunk fails (Cassandra timed out for it), partition 2's is stored
    markFailing(partitionKey("processor", 1), "write timeout");
    markHealthy(partitionKey("processor", 2));
    assert.equal(isHealthy(), false);
    assert.deepEqual(healthProblems(), { "processor[partition 1]": "write timeout" });
    markHealthy(partitionKey("processor", 1));
    assert.equal(isHealthy(), true);
  });

  it("a rebalance forgets the partitions moved away, keeps the failing ones still ours, and no other loop's", () => {
    markFailing(partitionKey("processor", 1), "a");
    markFailing(partitionKey("processor", 4), "b");
    markFailing(partitionKey("processor", 11), "c");
    markFailing("processor", "consumer crashed");
    markFailing("relay[0]", "kafka down");
    keepPartitions("processor", [4, 5]);
    assert.deepEqual(Object.keys(healthProblems()).sort(), ["processor", "processor[partition 4]", "relay[0]"]);
    keepPartitions("processor", []);
    assert.deepEqual(Object.keys(healthProblems()).sort(), ["processor", "relay[0]"]);
  });
});
