import { strict as assert } from "node:assert";
import { PORT_LABEL } from "../../../infra/targets/docker";
import { containers, Declared, DEV_CONFIG, devRun, envOf, hostnameOf, Run, runProgram, unwrap } from "./harness";

/** Ports a container says it listens on (its port labels). */
function listening(c: Declared): number[] {
  const labels = (c.inputs.labels ?? []) as { label: string; value: string }[];
  return labels.filter((l) => l.label.startsWith(PORT_LABEL)).map((l) => Number(l.value));
}

/** host:port pairs naming a network peer (no dots: loopback and host addresses are not peers). */
function peers(text: string): { host: string; port: number }[] {
  return [...text.matchAll(/(?:^|[/@,\s])([a-z][a-z0-9-]*):([0-9]{2,5})(?![0-9])/g)]
    .filter((m) => m[1] !== "localhost")
    .map((m) => ({ host: m[1], port: Number(m[2]) }));
}

describe("infra: wiring between containers", () => {
  let run: Run;
  let byHost: Map<string, Declared>;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
    byHost = new Map(containers(run).map((c) => [hostnameOf(c), c]));
  });

  it("every container is on the one private network, reachable by its hostname", () => {
    const nets = run.resources.filter((r) => r.type === "docker:index/network:Network");
    assert.equal(nets.length, 1);
    for (const c of containers(run)) {
      assert.deepEqual(
        unwrap(c.inputs.networksAdvanced),
        [{ name: nets[0].inputs.name, aliases: [hostnameOf(c)] }],
        hostnameOf(c),
      );
    }
  });

  it("every address in env and commands names a container on the network, at a port it listens on", () => {
    let checked = 0;
    for (const c of containers(run)) {
      const texts = [...Object.values(envOf(c)), ...((unwrap(c.inputs.command) ?? []) as string[])];
      for (const { host, port } of texts.flatMap(peers)) {
        const peer = byHost.get(host);
        assert.ok(peer, `${hostnameOf(c)} dials ${host}:${port}, but no container is called ${host}`);
        assert.ok(
          listening(peer).includes(port),
          `${hostnameOf(c)} dials ${host}:${port}, but ${host} listens on ${listening(peer)}`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 25, `only ${checked} addresses found: the scan is broken`);
  });

  // The addresses the issue names, each where it must be; the scan above checks they resolve.
  const expected: [string, string, RegExp][] = [
    ["kafka", "KAFKA_ZOOKEEPER_CONNECT", /^zookeeper:2181$/],
    ["kafka", "KAFKA_ADVERTISED_LISTENERS", /^INTERNAL:\/\/kafka:29092,EXTERNAL:\/\/127\.0\.0\.1:9092$/],
    ["schema-registry", "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS", /^PLAINTEXT:\/\/kafka:29092$/],
    ["control-center", "CONTROL_CENTER_BOOTSTRAP_SERVERS", /^kafka:29092$/],
    ["control-center", "CONTROL_CENTER_SCHEMA_REGISTRY_URL", /^http:\/\/schema-registry:8081$/],
    ["relay", "KAFKA_BROKERS", /^kafka:29092$/],
    ["relay", "SCHEMA_REGISTRY_URL", /^http:\/\/schema-registry:8081$/],
    ["processor", "KAFKA_BROKERS", /^kafka:29092$/],
    ["processor", "CASSANDRA_CONTACT_POINTS", /^cassandra:9042$/],
    ["spark-driver", "CASSANDRA_CONTACT_POINTS", /^cassandra:9042$/],
    ["spark-driver", "KAFKA_BROKERS", /^kafka:29092$/],
    ["spark-driver", "SPARK_MASTER_URL", /^spark:\/\/spark-master:7077$/],
    ["spark-worker-1", "SPARK_MASTER_URL", /^spark:\/\/spark-master:7077$/],
    [
      "airflow-scheduler",
      "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
      /^postgresql\+psycopg2:\/\/airflow:[^@]+@postgres:5432\/airflow$/,
    ],
    ["airflow-webserver", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", /@postgres:5432\/airflow$/],
    ["airflow-init", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", /@postgres:5432\/airflow$/],
    ["airflow-scheduler", "API_BASE_URL", /^http:\/\/api:8000$/],
    ["cassandra", "CASSANDRA_SEEDS", /^cassandra$/],
    ["airflow-scheduler", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", /^False$/],
    ["airflow-scheduler", "USER_AUTOMATION_SCHEDULE", /^\*\/5 \* \* \* \*$/],
    ["airflow-init", "_AIRFLOW_DB_MIGRATE", /^true$/],
    ["airflow-init", "_AIRFLOW_WWW_USER_CREATE", /^true$/],
  ];
  for (const [host, key, re] of expected) {
    it(`${host}: ${key}`, () => assert.match(envOf(byHost.get(host)!)[key] ?? "(unset)", re));
  }

  it("PG_HOST/PG_PORT of ingest, relay and the Airflow DAG name the PostgreSQL container", () => {
    for (const h of ["relay", "airflow-scheduler"]) {
      const env = envOf(byHost.get(h)!);
      const pg = byHost.get(env.PG_HOST);
      assert.ok(pg, `${h}: PG_HOST=${env.PG_HOST}`);
      assert.ok(listening(pg).includes(Number(env.PG_PORT)), `${h}: PG_PORT=${env.PG_PORT}`);
      assert.equal(env.PG_DATABASE, "pipeline");
    }
  });

  it("each worker gets only what it talks to", () => {
    const keys = (h: string) => Object.keys(envOf(byHost.get(h)!));
    // Ingest runs in the DAG (Airflow's containers), not as a container of its own.
    assert.equal(byHost.get("ingest"), undefined, "an always-on ingest container beside the DAG");
    assert.ok(
      !keys("airflow-scheduler").includes("KAFKA_BROKERS") && !keys("airflow-scheduler").includes("CASSANDRA_PASSWORD"),
    );
    assert.ok(!keys("relay").includes("CASSANDRA_CONTACT_POINTS") && !keys("relay").includes("API_BASE_URL"));
    assert.ok(!keys("processor").includes("PG_PASSWORD") && !keys("processor").includes("API_BASE_URL"));
  });

  it("an external data source replaces the offline API everywhere", async () => {
    const r = await runProgram({ ...DEV_CONFIG, dataSourceUrl: "https://randomuser.me" });
    for (const c of containers(r).filter((x) => "API_BASE_URL" in envOf(x))) {
      assert.equal(envOf(c).API_BASE_URL, "https://randomuser.me", hostnameOf(c));
    }
  });

  it("start order by health: each dependency is healthy (a waited service) or completed (an attached job)", () => {
    const order: [string, string[]][] = [
      ["kafka", ["zookeeper"]],
      ["kafka-topics", ["kafka"]],
      ["schema-registry", ["kafka"]],
      ["control-center", ["kafka", "schema-registry"]],
      ["cassandra-auth", ["cassandra"]],
      ["postgres-roles", ["postgres"]],
      ["spark-worker-1", ["spark-master"]],
      ["airflow-init", ["postgres-roles"]],
      ["airflow-webserver", ["airflow-init"]],
      ["airflow-scheduler", ["airflow-init"]],
      ["relay", ["postgres-roles", "kafka-topics", "schema-registry"]],
      ["processor", ["kafka-topics", "schema-registry", "cassandra-auth"]],
      ["spark-driver", ["spark-worker-1", "kafka-topics", "cassandra-auth"]],
    ];
    // A job is waited for through its run (JobRun), a service through its container.
    const jobs = new Set(["kafka-topics", "cassandra-auth", "postgres-roles", "airflow-init"]);
    const nameOf = (h: string) => `${byHost.get(h)!.name}${jobs.has(h) ? "-run" : ""}`;
    for (const [h, deps] of order) {
      const actual = run.dependsOn.get(byHost.get(h)!.name) ?? [];
      for (const d of deps) assert.ok(actual.includes(nameOf(d)), `${h} does not wait for ${d}`);
    }
    for (const c of containers(run)) {
      for (const dep of run.dependsOn.get(c.name) ?? []) {
        const d = containers(run).find((x) => x.name === dep);
        const jobRun = run.resources.find(
          (x) => x.type === "pulumi-nodejs:dynamic/realtime-pipeline:JobRun" && x.name === dep,
        );
        assert.ok(
          d?.inputs.wait === true || jobRun,
          `${hostnameOf(c)} depends on ${dep}, which is neither a waited service nor a job's run`,
        );
      }
    }
  });
});
