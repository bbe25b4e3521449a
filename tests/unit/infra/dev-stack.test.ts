/**
 * The dev stack's container settings that the first real `up` on a Docker engine needed (issue 7's
 * Docker-side defects, issue 12's settings), checked under mocks where the shape is the whole
 * story. What only the engine can show (a job's exit code, a rebuilt image rolling, health order,
 * data flowing) is in tests/stacks/dev-up.test.ts and tests/stacks/docker-job.test.ts.
 */
import { strict as assert } from "node:assert";
import { parseStageConfig } from "../../../infra/config";
import { memoryMiB } from "../../../infra/spec";
import { containers, DEV_CONFIG, devRun, envOf, hostnameOf, Run, runProgram, unwrap } from "./harness";

const byHost = (r: Run, h: string) => containers(r).find((c) => hostnameOf(c) === h);
/** -Xmx of a JVM option string, MiB. */
const xmx = (opts: string) => {
  const m = /-Xmx(\d+)([mg])/i.exec(opts);
  assert.ok(m, `no -Xmx in ${opts}`);
  return Number(m[1]) * (m[2].toLowerCase() === "g" ? 1024 : 1);
};

describe("infra: the dev stack's containers, as a real Docker engine needs them", () => {
  let run: Run;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
  });

  it("Kafka keeps its log in a folder inside its volume, not at the volume's root (lost+found stops the broker)", () => {
    const kafka = byHost(run, "kafka")!;
    const mounts = kafka.inputs.volumes as { containerPath: string }[];
    const dirs = envOf(kafka).KAFKA_LOG_DIRS;
    assert.ok(
      mounts.some((m) => dirs.startsWith(`${m.containerPath}/`)),
      `log.dirs ${dirs} is not inside a volume (${mounts.map((m) => m.containerPath).join(", ")})`,
    );
    assert.ok(!mounts.some((m) => m.containerPath === dirs), `log.dirs ${dirs} is a volume's root`);
  });

  it("JVM heaps fit their containers: ZooKeeper, Kafka, Schema Registry and Control Center at half the limit", () => {
    const cases: [string, string, string][] = [
      ["zookeeper", "KAFKA_HEAP_OPTS", "zookeeper"],
      ["kafka", "KAFKA_HEAP_OPTS", "kafka"],
      ["schema-registry", "SCHEMA_REGISTRY_HEAP_OPTS", "schemaRegistry"],
      ["control-center", "CONTROL_CENTER_HEAP_OPTS", "controlCenter"],
    ];
    for (const [host, key, mem] of cases) {
      const c = byHost(run, host)!;
      const limit = memoryMiB(DEV_CONFIG[`memory.${mem}`] ?? parseStageConfig(DEV_CONFIG).memory[mem as "kafka"]);
      assert.equal(Number(c.inputs.memory), limit, host);
      assert.ok(xmx(envOf(c)[key] ?? "") <= limit / 2, `${host}: ${key}=${envOf(c)[key]} for a ${limit} MiB limit`);
    }
  });

  it("memory + swap = the memory limit on every container (unset, Docker reads back 2x and the second up updated them all)", () => {
    for (const c of containers(run)) assert.equal(c.inputs.memorySwap, c.inputs.memory, hostnameOf(c));
  });

  it("PostgreSQL is healthy only over TCP (during initdb the socket-only server would pass pg_isready)", () => {
    const test = (unwrap(byHost(run, "postgres")!.inputs.healthcheck) as { tests: string[] }).tests;
    assert.deepEqual(test.slice(0, 4), ["CMD", "pg_isready", "-h", "127.0.0.1"]);
  });

  it("cassandra-auth keeps passwords off argv and retries until CQL and the default role are there", () => {
    const auth = byHost(run, "cassandra-auth")!;
    const args = (auth.inputs.command as string[]).join(" ");
    assert.doesNotMatch(args, /\s-p\s|--password/, "a password option on a command line");
    assert.match(args, /--cqlshrc/);
    assert.match(args, /for i in \$\(seq 1 \d+\)/);
    // The gate it waits behind is CQL itself.
    const hc = unwrap(byHost(run, "cassandra")!.inputs.healthcheck) as { tests: string[] };
    assert.match(hc.tests.join(" "), /\/dev\/tcp\/127\.0\.0\.1\/9042/);
  });

  it("the workers' HTTP servers listen on every interface of their container (LISTEN_HOST), so the API and /metrics are reachable", () => {
    for (const h of ["api", "relay", "processor"]) assert.equal(envOf(byHost(run, h)!).LISTEN_HOST, "0.0.0.0", h);
  });

  it("schemaRegistry karapace: Aiven's image, Confluent's API on the same port, ready when /master_available says true", async () => {
    const r = await runProgram({ ...DEV_CONFIG, schemaRegistry: "karapace" });
    const sr = byHost(r, "schema-registry")!;
    assert.equal(sr.inputs.image, "ghcr.io/aiven-open/karapace:5.0.3");
    assert.deepEqual(sr.inputs.command, ["python3", "-m", "karapace"]);
    assert.equal(envOf(sr).KARAPACE_BOOTSTRAP_URI, "kafka:29092");
    assert.equal(envOf(sr).KARAPACE_TOPIC_NAME, "_schemas");
    assert.match((unwrap(sr.inputs.healthcheck) as { tests: string[] }).tests.join(" "), /master_available/);
    // The workers still dial the same URL.
    assert.equal(envOf(byHost(r, "relay")!).SCHEMA_REGISTRY_URL, "http://schema-registry:8081");
    // Default: Confluent's.
    assert.equal(byHost(run, "schema-registry")!.inputs.image, "confluentinc/cp-schema-registry:7.9.2");
  });

  it("controlCenter false: no Control Center container and no controlCenterUrl output", async () => {
    const r = await runProgram({ ...DEV_CONFIG, controlCenter: "false" });
    assert.equal(r.error, undefined, String(r.error));
    assert.equal(byHost(r, "control-center"), undefined);
    assert.equal(r.outputs!.controlCenterUrl, undefined);
    assert.ok(byHost(run, "control-center"), "Control Center is in by default");
  });

  it("versions must be full tags (no apache/spark:3.5-…), and the Spark connectors follow sparkVersion", async () => {
    assert.throws(
      () => parseStageConfig({ ...DEV_CONFIG, sparkVersion: "3.5" }),
      /realtime-pipeline:sparkVersion: must be a full 3\.5\.x version/,
    );
    assert.throws(() => parseStageConfig({ ...DEV_CONFIG, confluentVersion: "7.9" }), /confluentVersion/);
    const r = await runProgram({ ...DEV_CONFIG, sparkVersion: "3.5.3" });
    const spark = r.resources.find((x) => x.type === "docker:index/image:Image" && x.name.endsWith("-spark-image"))!;
    assert.equal((spark.inputs.build as { args: Record<string, string> }).args.SPARK_VERSION, "3.5.3");
  });

  it("buildCaCertificates: the PEM reaches the image builds as EXTRA_CA_CERTS; a bad path is the stack's error, named", async () => {
    const pem = `${__dirname}/fixtures/test-ca.pem`;
    const r = await runProgram({ ...DEV_CONFIG, buildCaCertificates: pem });
    const images = r.resources.filter((x) => x.type === "docker:index/image:Image");
    const withCa = images.filter((i) =>
      /BEGIN CERTIFICATE/.test(String((i.inputs.build as { args: Record<string, string> }).args?.EXTRA_CA_CERTS ?? "")),
    );
    assert.deepEqual(withCa.map((i) => i.name.replace(/^realtime-pipeline-dev-/, "")).sort(), [
      "airflow-image",
      "jmx-agent-image",
      "spark-image",
      "workers-image",
    ]);
    const bad = await runProgram({ ...DEV_CONFIG, buildCaCertificates: "/nonexistent/ca.pem" });
    assert.match(String(bad.error), /realtime-pipeline:buildCaCertificates: cannot read \/nonexistent\/ca\.pem/);
    // Unset (the default): no extra certificate anywhere.
    for (const i of run.resources.filter((x) => x.type === "docker:index/image:Image")) {
      assert.equal((i.inputs.build as { args?: Record<string, string> }).args?.EXTRA_CA_CERTS, undefined, i.name);
    }
  });
});
