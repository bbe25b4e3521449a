/**
 * What keeps a day-2 change on a Kubernetes stage from losing data or breaking order: claims that
 * outlive their StatefulSets, protected claims of the stack's own, one relay and one Spark driver
 * at a time, liveness that means "this process is alive", drains and grace before a member stops,
 * ClusterIP Services for clients, claim sizes and waits from the stage config.
 */
import { strict as assert } from "node:assert";
import { Declared, Run, runProgram, unwrap } from "./harness";

const STAGING = {
  target: "kubernetes",
  registry: "ghcr.io/acme",
  namespace: "realtime-pipeline-staging",
  kubeContext: "staging-cluster",
};
type Probe = { exec: { command: string[] }; failureThreshold: number; periodSeconds: number };
type Container = {
  name: string;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec: { command: string[] } } };
};
type PodSpec = {
  containers: Container[];
  terminationGracePeriodSeconds?: number;
  nodeSelector?: Record<string, string>;
};
type WorkloadSpec = {
  replicas?: number;
  strategy?: { type: string; rollingUpdate?: { maxSurge: number; maxUnavailable: number } };
  persistentVolumeClaimRetentionPolicy?: { whenDeleted: string; whenScaled: string };
  volumeClaimTemplates?: { metadata: { name: string }; spec: { resources: { requests: { storage: string } } } }[];
  template: { spec: PodSpec };
};

const of = (r: Run, type: string) => r.resources.filter((x) => x.type === type);
const nameOf = (d: Declared) => (d.inputs.metadata as { name: string }).name;
const workload = (r: Run, n: string) =>
  [...of(r, "kubernetes:apps/v1:StatefulSet"), ...of(r, "kubernetes:apps/v1:Deployment")].find((w) => nameOf(w) === n)!;
const specOf = (w: Declared) => unwrap(w.inputs.spec) as WorkloadSpec;
const containerOf = (r: Run, n: string) => specOf(workload(r, n)).template.spec.containers[0];
const commandOf = (p?: Probe) => (p?.exec.command ?? []).join(" ");

describe("infra: day-2 changes on a Kubernetes stage keep data and order", () => {
  let run: Run;
  before(async () => {
    run = await runProgram(STAGING, "staging");
    assert.equal(run.error, undefined, String(run.error));
  });

  it("a cluster's members keep their claims when the StatefulSet is deleted or replaced, and when it shrinks", () => {
    for (const n of ["zookeeper", "kafka", "cassandra"]) {
      assert.deepEqual(
        specOf(workload(run, n)).persistentVolumeClaimRetentionPolicy,
        { whenDeleted: "Retain", whenScaled: "Retain" },
        n,
      );
    }
  });

  it("the stack's own claims are protected by default, and not when protectData is false", async () => {
    const claims = of(run, "kubernetes:core/v1:PersistentVolumeClaim");
    assert.deepEqual(claims.map(nameOf).sort(), [
      "airflow-logs",
      "postgres-data",
      "prometheus-data",
      "spark-checkpoints",
    ]);
    for (const c of claims) assert.equal(run.options.get(c.name)?.protect, true, c.name);
    const open = await runProgram({ ...STAGING, protectData: "false" }, "staging");
    for (const c of of(open, "kubernetes:core/v1:PersistentVolumeClaim"))
      assert.equal(open.options.get(c.name)?.protect, false, c.name);
  });

  it("claim sizes come from claimSizes, 10Gi by default", async () => {
    const sized = await runProgram(
      { ...STAGING, claimSizes: JSON.stringify({ "kafka-data": "50Gi", "postgres-data": "20Gi" }) },
      "staging",
    );
    assert.equal(sized.error, undefined, String(sized.error));
    const template = (r: Run, n: string) =>
      specOf(workload(r, n)).volumeClaimTemplates![0].spec.resources.requests.storage;
    assert.equal(template(run, "kafka"), "10Gi");
    assert.equal(template(sized, "kafka"), "50Gi");
    assert.equal(template(sized, "cassandra"), "10Gi");
    const claim = of(sized, "kubernetes:core/v1:PersistentVolumeClaim").find((c) => nameOf(c) === "postgres-data")!;
    assert.equal(
      (unwrap(claim.inputs.spec) as { resources: { requests: { storage: string } } }).resources.requests.storage,
      "20Gi",
    );
    const bad = await runProgram(
      { ...STAGING, claimSizes: JSON.stringify({ "kafka-data": "50GB", "kafka-logs": "1Gi" }) },
      "staging",
    );
    assert.match(String(bad.error), /realtime-pipeline:claimSizes\.kafka-data: must be a size such as 512Mi/);
    assert.match(String(bad.error), /realtime-pipeline:claimSizes\.kafka-logs: unknown key/);
  });

  it("a change never runs two relays or two Spark drivers: Recreate; other Deployments surge one and keep every pod", () => {
    for (const n of ["relay", "spark-driver"])
      assert.deepEqual(specOf(workload(run, n)).strategy, { type: "Recreate" }, n);
    for (const d of of(run, "kubernetes:apps/v1:Deployment").filter(
      (w) => !["relay", "spark-driver"].includes(nameOf(w)),
    )) {
      assert.deepEqual(
        specOf(d).strategy,
        { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        nameOf(d),
      );
    }
  });

  it("liveness means the process is alive: never the quorum, the ISR or the ring, and never a JVM", () => {
    for (const n of ["zookeeper", "kafka", "cassandra"]) {
      const c = containerOf(run, n);
      assert.ok(c.livenessProbe && c.startupProbe, `${n}: no liveness or startup probe`);
      assert.notEqual(commandOf(c.livenessProbe), commandOf(c.readinessProbe), `${n}: liveness is readiness`);
      assert.doesNotMatch(commandOf(c.livenessProbe), /srvr|kafka-topics|nodetool|Mode:/, n);
      // The startup probe allows the whole start budget of readiness before liveness counts.
      const budget = c.startupProbe!.failureThreshold * c.startupProbe!.periodSeconds;
      const ready = c.readinessProbe!;
      assert.ok(budget >= ready.failureThreshold * ready.periodSeconds, `${n}: startup budget ${budget} s`);
    }
    // Everything without an alive check of its own restarts only when its process exits.
    for (const n of ["relay", "processor", "schema-registry", "postgres"])
      assert.equal(containerOf(run, n).livenessProbe, undefined, n);
  });

  it("a Cassandra node drains before it stops; brokers get time for a controlled shutdown", () => {
    const grace = (n: string) => specOf(workload(run, n)).template.spec.terminationGracePeriodSeconds;
    assert.match(containerOf(run, "cassandra").lifecycle?.preStop?.exec.command.join(" ") ?? "", /nodetool drain/);
    assert.ok(
      grace("cassandra")! >= 120 && grace("kafka")! >= 120,
      `cassandra ${grace("cassandra")}, kafka ${grace("kafka")}`,
    );
    assert.match(containerOf(run, "postgres").lifecycle?.preStop?.exec.command.join(" ") ?? "", /kill -INT 1/);
  });

  it("clients get a ClusterIP of the ready pods; members and self-addressed processes a headless Service", () => {
    const services = new Map(
      of(run, "kubernetes:core/v1:Service").map((s) => [
        nameOf(s),
        s.inputs.spec as { clusterIP?: string; publishNotReadyAddresses?: boolean },
      ]),
    );
    for (const n of ["zookeeper", "kafka", "cassandra", "postgres", "spark-master", "spark-driver"]) {
      assert.equal(services.get(n)?.clusterIP, "None", n);
    }
    for (const n of ["schema-registry", "airflow-webserver", "api", "relay", "processor", "spark-worker"]) {
      const s = services.get(n)!;
      assert.ok(s, `${n}: no Service`);
      assert.notEqual(s.clusterIP, "None", n);
      assert.notEqual(s.publishNotReadyAddresses, true, n);
    }
  });

  it("Pulumi waits as long as a cluster takes to start one by one", () => {
    const minutes = (n: string) =>
      Number(String(run.options.get(`realtime-pipeline-staging-${n}`)?.customTimeouts?.create).replace(/m$/, ""));
    assert.ok(
      minutes("cassandra") > minutes("kafka"),
      `cassandra ${minutes("cassandra")} m, kafka ${minutes("kafka")} m`,
    );
    assert.ok(minutes("cassandra") >= 3 * 10, `cassandra ${minutes("cassandra")} m`);
    for (const w of [...of(run, "kubernetes:apps/v1:StatefulSet"), ...of(run, "kubernetes:apps/v1:Deployment")]) {
      assert.ok(minutes(nameOf(w)) >= 10, `${nameOf(w)}: ${minutes(nameOf(w))} m`);
    }
  });

  it("volumes of a non-root image get its group once, as root, before it starts (hostPath and local volumes ignore fsGroup)", () => {
    type Init = {
      name: string;
      command: string[];
      securityContext: { runAsUser: number };
      volumeMounts: { mountPath: string }[];
    };
    const inits = (n: string) =>
      (specOf(workload(run, n)).template.spec as PodSpec & { initContainers?: Init[] }).initContainers ?? [];
    const init = (n: string) => inits(n).find((c) => c.name === "volume-group");
    const kafka = init("kafka")!;
    assert.equal(kafka.securityContext.runAsUser, 0);
    assert.match(kafka.command.join(" "), /chgrp -R 1000 '\/var\/lib\/kafka\/data'/);
    assert.deepEqual(
      kafka.volumeMounts.map((m) => m.mountPath),
      ["/var/lib/kafka/data"],
    );
    // Images that start as root and hand their volumes over themselves need none.
    assert.equal(init("cassandra"), undefined);
    assert.equal(init("postgres"), undefined);
  });

  it("a JVM's agent folder is copied out of the agent image by an init container, and mounted read-only", () => {
    type Init = {
      name: string;
      image: unknown;
      command: string[];
      volumeMounts: { name: string; mountPath: string }[];
    };
    type Pod = PodSpec & { initContainers?: Init[]; volumes: { name: string; emptyDir?: object }[] };
    for (const n of ["kafka", "zookeeper", "cassandra"]) {
      const pod = specOf(workload(run, n)).template.spec as Pod;
      const copy = (pod.initContainers ?? []).find((c) => c.name.startsWith("copy-"));
      assert.ok(copy, `${n}: no copy init container`);
      assert.deepEqual(copy.command, ["cp", "-R", "/opt/jmx-agent/.", "/into/"], n);
      const volume = copy.volumeMounts[0].name;
      assert.deepEqual(pod.volumes.find((v) => v.name === volume)?.emptyDir, {}, `${n}: ${volume} is no emptyDir`);
      const main = (
        pod.containers as unknown as { volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[] }[]
      )[0];
      assert.deepEqual(
        main.volumeMounts.find((m) => m.name === volume),
        { name: volume, mountPath: "/opt/jmx-agent", readOnly: true },
        n,
      );
    }
  });

  it("pods run on the nodes nodeSelector names", async () => {
    const pinned = await runProgram({ ...STAGING, nodeSelector: JSON.stringify({ pool: "pipeline" }) }, "staging");
    for (const w of [
      ...of(pinned, "kubernetes:apps/v1:StatefulSet"),
      ...of(pinned, "kubernetes:apps/v1:Deployment"),
      ...of(pinned, "kubernetes:batch/v1:Job"),
    ]) {
      assert.deepEqual(specOf(w).template.spec.nodeSelector, { pool: "pipeline" }, w.name);
    }
    assert.equal(specOf(workload(run, "kafka")).template.spec.nodeSelector, undefined);
  });
});

describe("infra: a stack rename keeps every resource when namePrefix pins the old prefix", () => {
  it("the renamed stack declares the same names; without the pin every name changes", async () => {
    // The stack resource itself is Pulumi's own, renamed by `pulumi stack rename`.
    const names = (r: Run) =>
      r.resources
        .filter((x) => x.type !== "pulumi:pulumi:Stack")
        .map((x) => `${x.type} ${x.name}`)
        .sort();
    const old = await runProgram(STAGING, "staging");
    const pinned = await runProgram({ ...STAGING, namePrefix: "realtime-pipeline-staging" }, "staging-eu");
    const unpinned = await runProgram(STAGING, "staging-eu");
    assert.equal(pinned.error, undefined, String(pinned.error));
    assert.deepEqual(names(pinned), names(old));
    assert.equal(names(unpinned).filter((n) => names(old).includes(n)).length, 0);
    const bad = await runProgram({ ...STAGING, namePrefix: "Staging_EU" }, "staging");
    assert.match(String(bad.error), /realtime-pipeline:namePrefix: must be a lower-case DNS label/);
  });
});
