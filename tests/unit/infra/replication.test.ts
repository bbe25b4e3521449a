/**
 * Replicated stages (issue 9): the cluster sizes as stack settings, what they imply (replication
 * factors, min.insync.replicas, consistency), and the objects the Kubernetes target renders for a
 * ZooKeeper ensemble, Kafka brokers and a Cassandra ring. The per-member shell and the readiness
 * checks are run for real (bash), against stub tools where they would ask a live cluster.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { spawnSync } from "node:child_process";
import { StageConfigError, parseStageConfig, replicationOf } from "../../../infra/config";
import { kafkaBrokerSettings } from "../../../infra/catalog/settings";
import { DEV_CONFIG, Declared, Run, containers, envOf, hostnameOf, runProgram, unwrap } from "./harness";

const NS = "realtime-pipeline-prod";
const PROD = {
  target: "kubernetes",
  registry: "ghcr.io/acme",
  namespace: NS,
  kubeContext: "prod-cluster",
  sparkWorkers: "4",
};

type Container = {
  name: string;
  args?: string[];
  env: { name: string; value?: string }[];
  readinessProbe?: { exec: { command: string[] } };
  resources: { requests: { memory: string; cpu?: string }; limits: { memory: string } };
};
type PodSpec = { containers: Container[]; affinity?: { podAntiAffinity: Record<string, unknown[]> } };
type WorkloadSpec = {
  replicas?: number;
  podManagementPolicy?: string;
  updateStrategy?: { type: string };
  template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
};

const of = (r: Run, ...types: string[]) => r.resources.filter((x) => types.includes(x.type));
const nameOf = (d: Declared) => (d.inputs.metadata as { name: string }).name;
const workload = (r: Run, n: string) =>
  of(r, "kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job").find(
    (w) => nameOf(w) === n,
  )!;
const spec = (r: Run, n: string) => unwrap(workload(r, n).inputs.spec) as WorkloadSpec;
/** A container with its args as the kubelet hands them to the process (`$$` is `$`: literalArg). */
const container = (r: Run, n: string) => {
  const c = spec(r, n).template.spec.containers[0];
  return { ...c, args: c.args?.map((a) => a.replace(/\$\$/g, "$")) };
};
const env = (r: Run, n: string) => Object.fromEntries(container(r, n).env.map((e) => [e.name, e.value]));

const raw = (c: Record<string, string>) =>
  Object.fromEntries(
    Object.entries(c).map(([k, v]) => [k, v.startsWith("{") || v.startsWith("[") ? JSON.parse(v) : v]),
  );

function bash(script: string, envs: Record<string, string> = {}): { code: number | null; out: string; err: string } {
  // stdin closed, not a socket: Debian's bash sources ~/.bashrc when stdin is a socket and SHLVL is
  // unset (it takes us for sshd), and a bashrc that runs `pyenv init` costs 150-400 ms per call.
  const env = { PATH: process.env.PATH, ...envs };
  const r = spawnSync("bash", ["-c", script], { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe("infra: replication settings (issue 9)", () => {
  it("defaults: 3 of each on the kubernetes target, 1 on docker (dev unchanged)", () => {
    const dev = parseStageConfig(raw(DEV_CONFIG)).replication;
    assert.deepEqual(dev, {
      zookeeperNodes: 1,
      kafkaBrokers: 1,
      cassandraNodes: 1,
      processorReplicas: 1,
      topicReplicationFactor: 1,
      minInsyncReplicas: 1,
      cassandraReplicationFactor: 1,
    });
    const prod = parseStageConfig(raw(PROD)).replication;
    assert.deepEqual(prod, {
      zookeeperNodes: 3,
      kafkaBrokers: 3,
      cassandraNodes: 3,
      processorReplicas: 3,
      topicReplicationFactor: 3,
      minInsyncReplicas: 2,
      cassandraReplicationFactor: 3,
    });
  });

  it("derives RF = min(3, n), min.insync.replicas = max(1, RF - 1)", () => {
    const r = (n: number) =>
      replicationOf({ zookeeperNodes: 1, kafkaBrokers: n, cassandraNodes: n, processorReplicas: 1 });
    assert.deepEqual(
      [1, 2, 3, 5].map((n) => [r(n).topicReplicationFactor, r(n).minInsyncReplicas, r(n).cassandraReplicationFactor]),
      [
        [1, 1, 1],
        [2, 1, 2],
        [3, 2, 3],
        [3, 2, 3],
      ],
    );
    const broker = kafkaBrokerSettings({
      brokerId: 0,
      zookeeperConnect: "z:2181",
      listeners: { internal: "i", external: "e" },
      advertised: { internal: "i", external: "e" },
      logDirs: "/l",
      replicationFactor: 3,
    });
    assert.equal(broker["min.insync.replicas"], "2");
    assert.equal(broker["transaction.state.log.min.isr"], "2");
    assert.equal(broker["offsets.topic.replication.factor"], "3");
    assert.equal(broker["transaction.state.log.replication.factor"], "3");
    assert.equal(broker["unclean.leader.election.enable"], "false");
  });

  const BAD: { case: string; set: Record<string, string>; key: string; says: RegExp }[] = [
    {
      case: "three brokers on the docker target",
      set: { kafkaBrokers: "3" },
      key: "kafkaBrokers",
      says: /must be 1 on the docker target.*Fix: pulumi config rm realtime-pipeline:kafkaBrokers/,
    },
    {
      case: "three Cassandra nodes on the docker target",
      set: { cassandraNodes: "3" },
      key: "cassandraNodes",
      says: /must be 1 on the docker target/,
    },
    {
      case: "an even ZooKeeper ensemble",
      set: { ...PROD, zookeeperNodes: "4" },
      key: "zookeeperNodes",
      says: /must be odd/,
    },
    {
      case: "zero brokers",
      set: { ...PROD, kafkaBrokers: "0" },
      key: "kafkaBrokers",
      says: /integer >= 1.*Fix: pulumi config set realtime-pipeline:kafkaBrokers 3/,
    },
    {
      case: "an unknown anti-affinity",
      set: { ...PROD, antiAffinity: "strict" },
      key: "antiAffinity",
      says: /preferred or required/,
    },
    {
      case: "a CPU request that is not one",
      set: { ...PROD, cpu: JSON.stringify({ kafka: "lots" }) },
      key: "cpu.kafka",
      says: /CPU request such as 250m.*Fix: pulumi config set --path 'realtime-pipeline:cpu.kafka' 500m/,
    },
    {
      case: "an unknown consistency",
      set: { cassandraConsistency: "MOST" },
      key: "cassandraConsistency",
      says: /LOCAL_QUORUM/,
    },
  ];
  for (const b of BAD) {
    it(`rejects ${b.case}, naming the key and the fix, before any resource`, async () => {
      assert.throws(
        () => parseStageConfig(raw({ ...DEV_CONFIG, ...b.set })),
        (e: unknown) => {
          assert.ok(e instanceof StageConfigError);
          const line = e.problems.find((p) => p.startsWith(`realtime-pipeline:${b.key}:`));
          assert.ok(line, e.message);
          assert.match(line, b.says);
          return true;
        },
      );
      const run = await runProgram({ ...DEV_CONFIG, ...b.set }, "prod");
      assert.ok(run.error instanceof StageConfigError);
      assert.deepEqual(
        run.resources.filter((r) => r.type !== "pulumi:pulumi:Stack"),
        [],
      );
    });
  }
});

describe("infra: a replicated stage on the Kubernetes target", () => {
  let run: Run;
  let dev: Run;
  before(async () => {
    run = await runProgram(PROD, "prod");
    assert.equal(run.error, undefined, String(run.error));
    dev = await runProgram(DEV_CONFIG);
  });

  it("one StatefulSet of 3 per quorum system: ZooKeeper and Kafka start together, Cassandra one by one; rolling updates one at a time", () => {
    for (const [n, policy] of [
      ["zookeeper", "Parallel"],
      ["kafka", "Parallel"],
      ["cassandra", "OrderedReady"],
    ]) {
      const s = spec(run, n);
      assert.equal(workload(run, n).type, "kubernetes:apps/v1:StatefulSet", n);
      assert.equal(s.replicas, 3, n);
      assert.equal(s.podManagementPolicy, policy, n);
      assert.equal(s.updateStrategy?.type, "RollingUpdate", n);
    }
    assert.equal(spec(run, "postgres").replicas, 1);
    assert.equal(spec(run, "postgres").podManagementPolicy, undefined);
  });

  it("a PodDisruptionBudget of maxUnavailable 1 per cluster, selecting exactly its pods", () => {
    const pdbs = of(run, "kubernetes:policy/v1:PodDisruptionBudget");
    assert.deepEqual(pdbs.map(nameOf).sort(), ["cassandra", "kafka", "zookeeper"]);
    for (const p of pdbs) {
      const s = p.inputs.spec as { maxUnavailable: number; selector: { matchLabels: Record<string, string> } };
      assert.equal(s.maxUnavailable, 1);
      assert.deepEqual(s.selector.matchLabels, spec(run, nameOf(p)).template.metadata.labels);
    }
  });

  it("pods of a replicated workload avoid each other's node: preferred by default, required by setting", async () => {
    const terms = (r: Run, n: string) => spec(r, n).template.spec.affinity?.podAntiAffinity;
    for (const n of ["zookeeper", "kafka", "cassandra", "processor", "spark-worker"]) {
      const a = terms(run, n);
      assert.ok(a?.preferredDuringSchedulingIgnoredDuringExecution?.length === 1, n);
      const t = (
        a!.preferredDuringSchedulingIgnoredDuringExecution[0] as {
          podAffinityTerm: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } };
        }
      ).podAffinityTerm;
      assert.equal(t.topologyKey, "kubernetes.io/hostname");
      assert.deepEqual(t.labelSelector.matchLabels, spec(run, n).template.metadata.labels);
    }
    assert.equal(terms(run, "postgres"), undefined);
    const required = await runProgram({ ...PROD, antiAffinity: "required" }, "prod");
    for (const n of ["zookeeper", "kafka", "cassandra"])
      assert.equal(terms(required, n)?.requiredDuringSchedulingIgnoredDuringExecution?.length, 1, n);
    // Interchangeable replicas need not stay Pending for want of a node.
    assert.ok(terms(required, "processor")?.preferredDuringSchedulingIgnoredDuringExecution);
  });

  it("every container requests CPU as well as memory", () => {
    for (const w of of(
      run,
      "kubernetes:apps/v1:StatefulSet",
      "kubernetes:apps/v1:Deployment",
      "kubernetes:batch/v1:Job",
    )) {
      const c = (unwrap(w.inputs.spec) as WorkloadSpec).template.spec.containers[0];
      assert.match(c.resources.requests.cpu ?? "", /^[0-9.]+m?$/, c.name);
      assert.equal(c.resources.requests.memory, c.resources.limits.memory, c.name);
    }
    assert.equal(container(run, "kafka").resources.requests.cpu, "500m");
  });

  it("each member's own volumes, from claim templates", () => {
    for (const [n, v] of [
      ["zookeeper", ["zookeeper-data", "zookeeper-log"]],
      ["kafka", ["kafka-data"]],
      ["cassandra", ["cassandra-data"]],
    ] as const) {
      const t = (unwrap(workload(run, n).inputs.spec) as { volumeClaimTemplates: { metadata: { name: string } }[] })
        .volumeClaimTemplates;
      assert.deepEqual(
        t.map((x) => x.metadata.name),
        v,
      );
    }
  });

  it("ZooKeeper: an ensemble with stable ids (ordinal + 1), the full server list, ready when in the quorum", () => {
    const e = env(run, "zookeeper");
    assert.equal(e.ZOOKEEPER_SERVERS, [0, 1, 2].map((i) => `zookeeper-${i}.zookeeper.${NS}.svc:2888:3888`).join(";"));
    const args = container(run, "zookeeper").args!;
    for (const [host, id] of [
      ["zookeeper-0", "1"],
      ["zookeeper-2", "3"],
    ]) {
      const r = bash(args[2].replace(/exec \/etc\/confluent\/docker\/run$/, 'echo "$ZOOKEEPER_SERVER_ID"'), {
        HOSTNAME: host,
      });
      assert.equal(r.out.trim(), id, r.err);
    }
    assert.equal(bash(args[2], { HOSTNAME: "zookeeper-3" }).code, 1, "a fourth member joined");
    assert.match(
      container(run, "zookeeper").readinessProbe!.exec.command.join(" "),
      /srvr.*Mode: \(leader\|follower\)/,
    );
    assert.match(
      env(run, "kafka").KAFKA_ZOOKEEPER_CONNECT ?? "",
      new RegExp(`^zookeeper-0\\.zookeeper\\.${NS}\\.svc:2181,zookeeper-1\\..*,zookeeper-2\\..*:2181$`),
    );
  });

  it("Kafka: broker id and advertised listeners from the ordinal; RF 3, min ISR 2, no unclean election, internal topics at RF 3", () => {
    const e = env(run, "kafka");
    assert.equal(e.KAFKA_BROKER_ID, undefined);
    assert.equal(e.KAFKA_ADVERTISED_LISTENERS, undefined);
    assert.equal(e.KAFKA_MIN_INSYNC_REPLICAS, "2");
    assert.equal(e.KAFKA_DEFAULT_REPLICATION_FACTOR, "3");
    assert.equal(e.KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR, "3");
    assert.equal(e.KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR, "3");
    assert.equal(e.KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE, "false");
    const script = container(run, "kafka").args![2].replace(
      /exec \/etc\/confluent\/docker\/run$/,
      'echo "$KAFKA_BROKER_ID $KAFKA_ADVERTISED_LISTENERS"',
    );
    assert.equal(
      bash(script, { HOSTNAME: "kafka-1" }).out.trim(),
      `1 INTERNAL://kafka-1.kafka.${NS}.svc:29092,EXTERNAL://127.0.0.1:9093`,
    );
    assert.match(container(run, "kafka-topics").args!.join(" "), /--replication-factor 3/);
    assert.equal(env(run, "schema-registry").SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR, "3");
    const cc = env(run, "control-center");
    for (const k of [
      "CONTROL_CENTER_REPLICATION_FACTOR",
      "CONTROL_CENTER_INTERNAL_TOPICS_REPLICATION",
      "CONTROL_CENTER_COMMAND_TOPIC_REPLICATION",
      "CONFLUENT_METRICS_TOPIC_REPLICATION",
    ])
      assert.equal(cc[k], "3", k);
    assert.equal(env(run, "relay").TOPIC_REPLICATION_FACTOR, "3");
  });

  it("Kafka readiness: ready only when in the ISR of every partition it replicates (run against a stub kafka-topics)", () => {
    const probe = container(run, "kafka").readinessProbe!.exec.command;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "isr-"));
    try {
      const stub = (out: string, code = 0) => {
        fs.writeFileSync(path.join(dir, "kafka-topics"), `#!/bin/sh\ncat <<'EOF'\n${out}\nEOF\nexit ${code}\n`, {
          mode: 0o755,
        });
        return bash(probe[probe.length - 1], { HOSTNAME: "kafka-1", PATH: `${dir}:${process.env.PATH}` }).code;
      };
      const line = (r: string, isr: string) =>
        `\tTopic: users_created\tPartition: 0\tLeader: 0\tReplicas: ${r}\tIsr: ${isr}\tElr: \tLastKnownElr: `;
      assert.equal(stub(""), 0, "no under-replicated partition: ready");
      assert.equal(stub(line("0,1,2", "0,2")), 1, "kafka-1 out of an ISR: not ready");
      assert.equal(stub(line("0,2,3", "0,2")), 0, "another broker out of an ISR: ready");
      assert.equal(stub(line("0,11,2", "0,2")), 0, "broker 11 is not broker 1");
      assert.equal(stub("", 1), 1, "the broker does not answer: not ready");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the topics job retries while the broker is not serving yet, and fails after its attempts (run against a stub kafka-topics)", () => {
    const script = container(run, "kafka-topics").args![2];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "topics-"));
    try {
      // The stub fails its first `failures` calls; `sleep` is a no-op so the test takes no time.
      const runWith = (failures: number) => {
        fs.writeFileSync(path.join(dir, "calls"), "");
        fs.writeFileSync(
          path.join(dir, "kafka-topics"),
          `#!/bin/sh\necho x >> ${dir}/calls\n[ $(wc -l < ${dir}/calls) -gt ${failures} ]\n`,
          { mode: 0o755 },
        );
        fs.writeFileSync(path.join(dir, "sleep"), "#!/bin/sh\n", { mode: 0o755 });
        const r = bash(script, { PATH: `${dir}:${process.env.PATH}` });
        return {
          code: r.code,
          calls: fs.readFileSync(path.join(dir, "calls"), "utf8").split("\n").filter(Boolean).length,
          err: r.err,
        };
      };
      assert.deepEqual(runWith(0).calls, 2, "both topics created at the first attempt");
      const late = runWith(3);
      assert.equal(late.code, 0, "a broker that serves after 3 refusals: the job passes");
      assert.match(late.err, /attempt 3 of 20 failed/);
      const never = runWith(1000);
      assert.equal(never.code, 1, "a broker that never serves: the job fails");
      assert.equal(never.calls, 20, "after 20 attempts");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("Cassandra: a ring seeded by its first two members, ready when UN, system_auth replicated, writes at LOCAL_QUORUM", () => {
    const e = env(run, "cassandra");
    assert.equal(e.CASSANDRA_SEEDS, `cassandra-0.cassandra.${NS}.svc,cassandra-1.cassandra.${NS}.svc`);
    assert.match(container(run, "cassandra").readinessProbe!.exec.command.join(" "), /nodetool status.*\^UN/);
    const auth = container(run, "cassandra-auth").args!.join(" ");
    assert.match(
      auth,
      /ALTER KEYSPACE system_auth WITH replication = \{'class': 'NetworkTopologyStrategy', 'dc1': 3\}/,
    );
    const p = env(run, "processor");
    assert.equal(p.CASSANDRA_CONTACT_POINTS, [0, 1, 2].map((i) => `cassandra-${i}.cassandra.${NS}.svc:9042`).join(","));
    assert.equal(p.CASSANDRA_REPLICATION_FACTOR, "3");
    assert.equal(p.CASSANDRA_CONSISTENCY, "LOCAL_QUORUM");
    assert.equal(env(run, "spark-driver").CASSANDRA_CONSISTENCY, "LOCAL_QUORUM");
  });

  it("workers and Spark workers: one workload each with N replicas", () => {
    assert.equal(spec(run, "processor").replicas, 3);
    assert.equal(spec(run, "relay").replicas, 1);
    assert.equal(spec(run, "spark-worker").replicas, 4);
    assert.equal(env(run, "spark-driver").SPARK_CORES_MAX, "4");
  });

  it("dev keeps one of each: no PDB, no ensemble, the single-node checks", () => {
    assert.equal(of(dev, "kubernetes:policy/v1:PodDisruptionBudget").length, 0);
    const c = (h: string) => containers(dev).find((x) => hostnameOf(x) === h)!;
    assert.equal(envOf(c("zookeeper")).ZOOKEEPER_SERVERS, undefined);
    assert.equal(envOf(c("kafka")).KAFKA_BROKER_ID, "1");
    assert.equal(envOf(c("kafka")).KAFKA_ADVERTISED_LISTENERS, "INTERNAL://kafka:29092,EXTERNAL://127.0.0.1:9092");
    assert.equal(envOf(c("kafka")).KAFKA_MIN_INSYNC_REPLICAS, "1");
    assert.equal(envOf(c("cassandra")).CASSANDRA_SEEDS, "cassandra");
    assert.equal(envOf(c("processor")).CASSANDRA_CONTACT_POINTS, "cassandra:9042");
    assert.doesNotMatch((c("cassandra-auth").inputs.command as string[]).join(" "), /system_auth/);
    assert.deepEqual(
      containers(dev)
        .map(hostnameOf)
        .filter((h) => h.startsWith("spark-worker"))
        .sort(),
      ["spark-worker-1", "spark-worker-2"],
    );
  });
});
