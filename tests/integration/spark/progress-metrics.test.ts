/**
 * The Spark query's lag: Spark keeps its offsets in the checkpoint, not in a consumer group, so the
 * job's listener (images/spark/job/progress_metrics.py) pushes each progress report to the
 * Pushgateway. Here a local HTTP server stands where the gateway would be and records the pushes
 * of the job running against the real master, Kafka and Cassandra.
 */
import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { SchemaRegistry } from "@kafkajs/confluent-schema-registry";
import { Kafka, logLevel } from "kafkajs";
import { loadServicesEnv, type ServicesEnv } from "../../support/services";
import { SPARK_KEYS, startSparkJob, waitFor, type SparkJob } from "./spark-job";
import { createTopic, deleteTopic, produceUsers, registerFor, user } from "./records";

describe("Spark job users_by_country: its progress reaches the Pushgateway (offsets behind, rates)", function () {
  this.timeout(600_000);
  let env: ServicesEnv;
  let kafka: Kafka;
  let job: SparkJob | undefined;
  let server: http.Server;
  const pushes: { method: string; path: string; body: string }[] = [];
  const tag = Date.now().toString(36);
  const topic = `spark_progress_${tag}`;

  before(async () => {
    env = loadServicesEnv([...SPARK_KEYS, "SCHEMA_REGISTRY_URL"]);
    kafka = new Kafka({
      clientId: "spark-progress-it",
      brokers: env.KAFKA_BROKERS.split(","),
      logLevel: logLevel.NOTHING,
    });
    await createTopic(kafka, topic);
    server = http.createServer((req, res) => {
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        pushes.push({ method: req.method ?? "", path: req.url ?? "", body });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  });

  after(async () => {
    await job?.stop();
    await new Promise<void>((r) => server?.close(() => r()));
    if (kafka) await deleteTopic(kafka, topic);
  });

  it("after each batch: the query's group replaced with its records behind the topic's end, batch id and rates", async () => {
    const registry = new SchemaRegistry({ host: env.SCHEMA_REGISTRY_URL });
    const schemaId = await registerFor(registry, topic);
    const m0 = Math.floor(Date.now() / 60_000) * 60_000;
    await produceUsers(
      kafka,
      registry,
      schemaId,
      topic,
      Array.from({ length: 20 }, (_, i) => user(`P_${tag}`, "male", m0 + i * 1000, i)),
    );
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    job = startSparkJob(env, { topic, env: { PUSHGATEWAY_URL: url } });
    const show = () => `--- spark-submit output (tail) ---\n${job!.output().slice(-4000)}`;
    // a report of a batch that read the 20 records, then one that finds the query at the topic's end
    const behind = (body: string) => /^spark_query_offsets_behind_latest\{[^}]*stat="max"\} (\S+)$/m.exec(body)?.[1];
    const caughtUp = await waitFor(
      "a pushed report with the query at the topic's end",
      240_000,
      async () => {
        if (job!.proc.exitCode !== null) throw new Error(`spark-submit exited ${job!.proc.exitCode}\n${show()}`);
        return pushes.find(
          (p) => behind(p.body) === "0" && /^spark_query_batch_id\{query="users_by_country"\} [1-9]/m.test(p.body),
        );
      },
      show,
    );
    assert.equal(caughtUp.method, "PUT");
    assert.equal(caughtUp.path, "/metrics/job/spark-query/query/users_by_country");
    assert.match(caughtUp.body, /^spark_query_last_progress_timestamp_seconds\{query="users_by_country"\} \d/m);
    assert.match(caughtUp.body, /^# TYPE spark_query_offsets_behind_latest gauge$/m);
    // every push is one whole, parseable report: each sample line is name{labels} number
    for (const p of pushes) {
      for (const line of p.body.split("\n").filter((l) => l && !l.startsWith("#")))
        assert.match(line, /^[a-z_]+\{[^}]*\} -?[0-9.e+]+$/, line);
    }
  });
});
