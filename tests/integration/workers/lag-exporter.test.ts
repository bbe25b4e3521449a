/**
 * The lag exporter against the real Kafka: a group that committed part of a topic is behind by
 * exactly the rest, per partition, and /metrics says so under kafka_exporter's names; a group
 * that commits everything is at 0; a partition never committed is left out; a group whose offsets
 * are gone leaves no series behind.
 */
import assert from "node:assert/strict";
import { readLag, runLagExporter } from "../../../runtime/lag/lag-exporter";
import { lagSchema, loadConfig } from "../../../runtime/lib/config";
import { createLogger } from "../../../runtime/lib/logger";
import { metrics } from "../../../runtime/lib/metrics";
import { kafka, servicesEnv, uniq } from "./harness";

describe("lag exporter: consumer groups against the topic's end (real Kafka)", function () {
  this.timeout(120_000);
  const topic = uniq("it-lag");
  const group = uniq("it-lag-group");
  const k = kafka();
  const admin = k.admin();

  before(async () => {
    await admin.connect();
    await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true });
    const producer = k.producer();
    await producer.connect();
    // partition 0: 10 records, partition 1: 4, partition 2: none
    await producer.send({ topic, messages: [...Array(10).keys()].map((i) => ({ partition: 0, value: `a${i}` })) });
    await producer.send({ topic, messages: [...Array(4).keys()].map((i) => ({ partition: 1, value: `b${i}` })) });
    await producer.disconnect();
    // the group has read 3 of partition 0 and all of partition 1; nothing committed on 2
    await admin.setOffsets({
      groupId: group,
      topic,
      partitions: [
        { partition: 0, offset: "3" },
        { partition: 1, offset: "4" },
      ],
    });
  });

  after(async () => {
    await admin.deleteGroups([group]).catch(() => undefined);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  });

  it("readLag: committed and end offsets per partition; a partition never committed is left out", async () => {
    const r = await readLag(admin, [group]);
    const parts = r.get(group)?.get(topic);
    assert.ok(parts, JSON.stringify([...r.keys()]));
    assert.deepEqual(Object.fromEntries(parts), { 0: { committed: 3, end: 10 }, 1: { committed: 4, end: 4 } });
  });

  it("one round of the exporter: kafka_consumergroup_lag 7 and 0, the offsets beside, on /metrics", async () => {
    const e = servicesEnv();
    const config = loadConfig(lagSchema, {
      KAFKA_BROKERS: e.KAFKA_BROKERS,
      LAG_GROUPS: `${group}, ${uniq("no-such-group")}`,
      LAG_INTERVAL_MS: "500",
    });
    const s = await runLagExporter({ config, log: createLogger("lag", "silent"), rounds: 1 });
    assert.deepEqual(s, { rounds: 1, failedRounds: 0 });
    const text = await metrics().registry.metrics();
    const value = (name: string, p: number) => {
      const m = new RegExp(
        `^${name}\\{consumergroup="${group}",topic="${topic}",partition="${p}"\\} (\\d+)$`,
        "m",
      ).exec(text);
      return m ? Number(m[1]) : undefined;
    };
    assert.equal(value("kafka_consumergroup_lag", 0), 7);
    assert.equal(value("kafka_consumergroup_lag", 1), 0);
    assert.equal(value("kafka_consumergroup_lag", 2), undefined);
    assert.equal(value("kafka_consumergroup_current_offset", 0), 3);
    assert.match(
      text,
      new RegExp(`^kafka_topic_partition_current_offset\\{topic="${topic}",partition="0"\\} 10$`, "m"),
    );

    // the group's offsets gone (expired, or deleted as here): the next reading leaves no frozen lag behind
    await admin.deleteGroups([group]);
    await runLagExporter({ config, log: createLogger("lag", "silent"), rounds: 1 });
    const after = await metrics().registry.metrics();
    assert.doesNotMatch(after, new RegExp(`consumergroup="${group}"`));
  });
});
