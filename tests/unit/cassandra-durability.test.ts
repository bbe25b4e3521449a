/** Cassandra acks a write after its commitlog is synced: cassandraSettings and the local cassandra.yaml. */
import { strict as assert } from "node:assert";
import { cassandraSettings } from "../../infra/catalog/settings";
import { cassandraYaml } from "../../scripts/render-config";

describe("Cassandra acknowledges a write once its commitlog is on disk", () => {
  it("sets group commitlog sync (no period) in cassandraSettings and the local cassandra.yaml", () => {
    const s = cassandraSettings({ clusterName: "c", seeds: "s", listenAddress: "l", rpcAddress: "r", dataDir: "/d" });
    assert.equal(s.commitlog_sync, "group");
    assert.equal(s.commitlog_sync_period, "0ms");
    const y = cassandraYaml("/state/run");
    assert.match(y, /^commitlog_sync: "group"$/m);
    assert.match(y, /^commitlog_sync_group_window: "10ms"$/m);
    // Cassandra refuses a period beside group mode: the base's is overridden
    assert.match(y, /^commitlog_sync_period: "0ms"$/m);
    assert.equal(y.match(/^commitlog_sync:/gm)?.length, 1);
    assert.match(y, /^concurrent_writes: 128$/m);
  });
});
