import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../../infra/spec";
import { containers, DEV_CONFIG, devRun, hostnameOf, Run, runProgram } from "./harness";

describe("infra: the dev stack declares every container", () => {
  let run: Run;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
  });

  /**
   * A project image as containers take it: by digest (repoDigest), so a rebuild rolls them (mocks answer
   * repo@sha256:0…).
   */
  const digest = (repo: string) => `${repo}@sha256:${"0".repeat(64)}`;
  const expected: Record<string, string> = {
    postgres: "postgres:15.13-bookworm",
    zookeeper: "confluentinc/cp-zookeeper:7.9.2",
    kafka: "confluentinc/cp-kafka:7.9.2",
    "schema-registry": "confluentinc/cp-schema-registry:7.9.2",
    "control-center": "confluentinc/cp-enterprise-control-center:7.9.2",
    cassandra: "cassandra:5.0.6",
    "spark-master": digest("realtime-pipeline-dev/spark"),
    "spark-driver": digest("realtime-pipeline-dev/spark"),
    "airflow-webserver": digest("realtime-pipeline-dev/airflow"),
    "airflow-scheduler": digest("realtime-pipeline-dev/airflow"),
    relay: digest("realtime-pipeline-dev/workers"),
    processor: digest("realtime-pipeline-dev/workers"),
  };
  for (const [host, image] of Object.entries(expected)) {
    it(`${host}: declared once, image ${image}`, () => {
      const found = containers(run).filter((c) => hostnameOf(c) === host);
      assert.equal(found.length, 1, `${host} declared ${found.length} times`);
      assert.equal(found[0].inputs.image, image);
    });
  }

  it("spark workers: as many as sparkWorkers, each on the configured image", () => {
    const workers = containers(run).filter((c) => /^spark-worker-\d+$/.test(hostnameOf(c)));
    assert.equal(workers.length, 2);
    for (const w of workers) assert.equal(w.inputs.image, digest("realtime-pipeline-dev/spark"));
  });

  it("spark worker count follows config (1 and 5)", async () => {
    for (const n of [1, 5]) {
      const r = await runProgram({ ...DEV_CONFIG, sparkWorkers: String(n), sparkWorkerCores: "2" });
      const workers = containers(r).filter((c) => /^spark-worker-\d+$/.test(hostnameOf(c)));
      assert.equal(workers.length, n);
      for (const w of workers) assert.ok((w.inputs.command as string[]).join(" ").includes("--cores 2"));
    }
  });

  it("images: workers, airflow, the spark job and the JMX agent are built from images/, never pushed", () => {
    const images = run.resources.filter((r) => r.type === "docker:index/image:Image");
    // Absolute: providers run in infra/ (Pulumi.yaml main), where a relative path names nothing.
    for (const i of images) {
      const b = i.inputs.build as { context: string; dockerfile: string };
      assert.ok(
        path.isAbsolute(b.context) && path.isAbsolute(b.dockerfile),
        `${i.name}: ${b.context} ${b.dockerfile} not absolute`,
      );
      // the repository root, or the image's own folder where it copies nothing else (the JMX agent)
      assert.ok(b.context === REPO_ROOT || b.context === path.dirname(b.dockerfile), `${i.name}: context ${b.context}`);
      assert.ok(fs.existsSync(b.dockerfile), b.dockerfile);
    }
    const dockerfiles = images
      .map((i) => path.relative(REPO_ROOT, (i.inputs.build as { dockerfile: string }).dockerfile))
      .sort();
    assert.deepEqual(dockerfiles, [
      "images/airflow/Dockerfile",
      "images/jmx-agent/Dockerfile",
      "images/spark/Dockerfile",
      "images/workers/Dockerfile",
    ]);
    for (const i of images) assert.equal(i.inputs.skipPush, true);
    const spark = images.find((i) => i.name.endsWith("-spark-image"))!;
    // The configured Spark version reaches the image through its base and its connectors.
    assert.deepEqual((spark.inputs.build as { args: unknown }).args, {
      SPARK_IMAGE: "apache/spark:3.5.1-scala2.12-java17-python3-ubuntu",
      SPARK_VERSION: "3.5.1",
    });
    // The classic builder: what Docker engines without BuildKit (Debian's 20.10) run.
    for (const i of images)
      assert.equal((i.inputs.build as { builderVersion: string }).builderVersion, "BuilderV1", i.name);
  });

  it("the Airflow image takes the worker bundle from the worker image the stack built", () => {
    const images = run.resources.filter((r) => r.type === "docker:index/image:Image");
    const workers = images.find((i) => i.name.endsWith("-workers-image"))!;
    const airflow = images.find((i) => i.name.endsWith("-airflow-image"))!;
    const args = (airflow.inputs.build as { args: Record<string, string> }).args;
    // By digest: a rebuilt worker image rebuilds the Airflow image (a tag would not change).
    assert.equal(args.WORKERS_IMAGE, digest(String(workers.inputs.imageName).replace(/:[^:/]+$/, "")));
    assert.equal(args.AIRFLOW_VERSION, "2.10.5");
  });

  it("the offline API runs from the worker image only when no dataSourceUrl is set", async () => {
    const api = containers(run).filter((c) => hostnameOf(c) === "api");
    assert.equal(api.length, 1);
    assert.deepEqual(api[0].inputs.command, ["node", "dist/runtime/main.js", "api"]);
    const external = await runProgram({ ...DEV_CONFIG, dataSourceUrl: "https://randomuser.me" });
    assert.equal(containers(external).filter((c) => hostnameOf(c) === "api").length, 0);
  });

  it("parent: this: every container hangs under the component of its subsystem, every volume under the target", () => {
    const subsystem: Record<string, string> = {
      postgres: "Postgres",
      "postgres-roles": "Postgres",
      zookeeper: "Kafka",
      kafka: "Kafka",
      "kafka-topics": "Kafka",
      "schema-registry": "Kafka",
      "control-center": "Kafka",
      cassandra: "Cassandra",
      "cassandra-auth": "Cassandra",
      "spark-master": "Spark",
      "spark-worker-1": "Spark",
      "spark-worker-2": "Spark",
      "spark-driver": "Spark",
      "airflow-init": "Airflow",
      "airflow-webserver": "Airflow",
      "airflow-scheduler": "Airflow",
      api: "Workers",
      relay: "Workers",
      processor: "Workers",
      prometheus: "Monitoring",
      "lag-exporter": "Monitoring",
      // Docker has no init containers: a job copies the JMX agent out of its image for each JVM.
      "postgres-exporter": "Exporters",
      pushgateway: "Exporters",
      "statsd-exporter": "Exporters",
      "node-exporter": "Exporters",
      "copy-zookeeper-jmx-agent": "Kafka",
      "copy-kafka-jmx-agent": "Kafka",
      "copy-cassandra-jmx-agent": "Cassandra",
    };
    assert.equal(containers(run).length, Object.keys(subsystem).length);
    for (const c of containers(run)) {
      assert.equal(run.parents.get(c.name), `realtime-pipeline:index:${subsystem[hostnameOf(c)]}`, c.name);
    }
    // The target owns what it creates: volumes hang under it, not under whichever component mounted them first.
    const volumes = run.resources.filter((r) => r.type === "docker:index/volume:Volume");
    assert.ok(volumes.length >= 6);
    for (const v of volumes) assert.equal(run.parents.get(v.name), "realtime-pipeline:docker:Target", v.name);
    for (const r of run.resources.filter(
      (x) => !x.type.startsWith("realtime-pipeline:") && x.type !== "pulumi:pulumi:Stack",
    )) {
      assert.match(run.parents.get(r.name) ?? "", /^realtime-pipeline:/, `${r.type} ${r.name} has no component parent`);
    }
  });

  it(`counts the dev stack's resources`, () => {
    const byType = new Map<string, number>();
    for (const r of run.resources) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
    console.log(`      dev stack: ${run.resources.length} resources`, Object.fromEntries(byType));
  });
});
