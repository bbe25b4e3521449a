import { strict as assert } from "node:assert";
import { DEV_CONFIG, Declared, Run, containers, hostnameOf, plainLeaks, resolve, runProgram, unwrap } from "./harness";

const STAGING = {
  target: "kubernetes",
  registry: "ghcr.io/acme",
  namespace: "realtime-pipeline-staging",
  sparkWorkers: "2",
  kubeContext: "staging-cluster",
};
const JOBS = ["airflow-init", "cassandra-auth", "kafka-topics", "postgres-roles"];
/** What keeps state of its own: a StatefulSet; everything else is a Deployment. */
const STATEFUL = ["cassandra", "kafka", "postgres", "prometheus", "zookeeper"];
/** One pod on each node: a DaemonSet. */
const EVERY_MACHINE = ["node-exporter"];
const NS = "realtime-pipeline-staging";
const WORKLOADS = ["kubernetes:apps/v1:StatefulSet", "kubernetes:apps/v1:Deployment", "kubernetes:apps/v1:DaemonSet"];

type Container = {
  name: string;
  image: string;
  args?: string[];
  env: { name: string; value?: string; valueFrom?: unknown }[];
  readinessProbe?: { exec: { command: string[] } };
  resources: { limits: { memory: string } };
  volumeMounts: { name: string; mountPath: string }[];
};
const podContainer = (w: Declared) =>
  (unwrap(w.inputs.spec) as { template: { spec: { containers: Container[] } } }).template.spec.containers[0];
const of = (r: Run, ...types: string[]) => r.resources.filter((x) => types.includes(x.type));
const named = (r: Run, n: string) =>
  of(r, ...WORKLOADS, "kubernetes:batch/v1:Job").find((w) => (w.inputs.metadata as { name: string }).name === n)!;

describe("infra: the same specs on the Kubernetes target (staging/prod)", () => {
  let run: Run;
  let docker: Run;
  before(async () => {
    run = await runProgram(STAGING, "staging");
    assert.equal(run.error, undefined, String(run.error));
    docker = await runProgram(DEV_CONFIG);
  });

  it("declares a StatefulSet per stateful service, a Deployment per stateless one, a DaemonSet per every-machine one, a Job per job, under the Docker names", () => {
    const names = (type: string) =>
      of(run, type)
        .map((w) => (w.inputs.metadata as { name: string }).name)
        .sort();
    // Docker's copy-* jobs are init containers of the pods here.
    const dockerHosts = containers(docker)
      .map(hostnameOf)
      .filter((h) => !h.startsWith("copy-"));
    assert.deepEqual(names("kubernetes:batch/v1:Job"), JOBS);
    assert.deepEqual(names("kubernetes:apps/v1:StatefulSet"), STATEFUL);
    // Docker's spark-worker-1..N are one Deployment of N replicas here.
    const other = [...JOBS, ...STATEFUL, ...EVERY_MACHINE];
    const stateless = [
      ...new Set(
        dockerHosts.filter((h) => !other.includes(h)).map((h) => h.replace(/^spark-worker-\d+$/, "spark-worker")),
      ),
    ];
    assert.deepEqual(names("kubernetes:apps/v1:Deployment"), stateless.sort());
    assert.deepEqual(names("kubernetes:apps/v1:DaemonSet"), EVERY_MACHINE);
    assert.equal(of(run, "docker:index/container:Container").length, 0);
  });

  it("every container's args reach its process as the Docker target passes them: each $ doubled, so the kubelet expands no $(NAME) and keeps $$", () => {
    // what the kubelet makes of an arg: $$ -> $, $(NAME) -> NAME's value when the env has it
    const kubelet = (a: string, env: Record<string, string>) =>
      a.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, n: string | undefined) =>
        m === "$$" ? "$" : n !== undefined && n in env ? env[n] : m,
      );
    // every $ of every arg doubled: nothing for the kubelet to expand or fold
    for (const w of of(run, ...WORKLOADS, "kubernetes:batch/v1:Job")) {
      const spec = unwrap(w.inputs.spec) as {
        template: { spec: { containers: { args?: string[] }[]; initContainers?: { command?: string[] }[] } };
      };
      const args = [
        ...spec.template.spec.containers.flatMap((c) => c.args ?? []),
        ...(spec.template.spec.initContainers ?? []).flatMap((c) => c.command ?? []),
      ];
      for (const a of args) assert.match(a, /^(?:[^$]|\$\$)*$/, (w.inputs.metadata as { name: string }).name);
    }
    // the roles job's script (no address or size in it) reaches psql exactly as on Docker
    const roles = podContainer(named(run, "postgres-roles"));
    const env = Object.fromEntries(roles.env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]));
    const twin = containers(docker).find((c) => hostnameOf(c) === "postgres-roles")!;
    assert.deepEqual(
      roles.args!.map((a) => kubelet(a, env)),
      unwrap(twin.inputs.command),
    );
    // the case that broke: a psql script's DO $$ ... $$ block in the roles job
    assert.ok(podContainer(named(run, "postgres-roles")).args!.some((a) => a.includes("DO $$$$")));
  });

  it("every address in env and args names a Service in the namespace, at a port it serves", () => {
    const services = new Map(
      of(run, "kubernetes:core/v1:Service").map((s) => {
        const spec = s.inputs.spec as { ports: { port: number }[] };
        return [(s.inputs.metadata as { name: string }).name, spec.ports.map((p) => p.port)];
      }),
    );
    let checked = 0;
    for (const w of of(run, ...WORKLOADS, "kubernetes:batch/v1:Job")) {
      const c = podContainer(w);
      const texts = [...c.env.map((e) => e.value ?? ""), ...(c.args ?? [])];
      // Qualified by the namespace, so the same address works from another namespace (another stack).
      for (const m of texts.flatMap((t) => [
        ...t.matchAll(/(?:^|[/@,;\s])([a-z][a-z0-9-]*)(\.[a-z0-9.-]+)?:([0-9]{2,5})(?![0-9])/g),
      ])) {
        if (m[1] === "localhost") continue;
        // A cluster member by its own name: <service>-<i>.<service>.<namespace>.svc.
        const member = /^([a-z][a-z0-9-]*)-[0-9]+$/.exec(m[1]);
        if (member && m[2] === `.${member[1]}.${NS}.svc`) m[1] = member[1];
        else assert.equal(m[2], `.${NS}.svc`, `${c.name} dials ${m[0].trim()}: not qualified by the namespace`);
        assert.ok(
          services.get(m[1])?.includes(Number(m[3])),
          `${c.name} dials ${m[1]}:${m[3]}, which no Service serves`,
        );
        checked++;
      }
    }
    assert.ok(checked >= 20, `only ${checked} addresses found`);
  });

  it("every service has its health check as readiness probe, a memory limit, an image by tag or digest", () => {
    for (const w of of(run, ...WORKLOADS)) {
      const c = podContainer(w);
      assert.ok(c.readinessProbe && c.readinessProbe.exec.command.length > 0, `${c.name}: no readiness probe`);
      assert.match(c.resources.limits.memory, /^[1-9][0-9]*Mi$/, c.name);
      assert.match(c.image, /(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})$/, c.name);
      assert.doesNotMatch(c.image, /:latest$/, c.name);
    }
    const workers = podContainer(named(run, "relay"));
    assert.equal(workers.image, `ghcr.io/acme/realtime-pipeline-staging-workers@sha256:${"0".repeat(64)}`);
  });

  it("turns off service links (KAFKA_PORT and friends would confuse the Confluent images)", () => {
    for (const w of of(run, ...WORKLOADS, "kubernetes:batch/v1:Job")) {
      assert.equal(
        (unwrap(w.inputs.spec) as { template: { spec: { enableServiceLinks: boolean } } }).template.spec
          .enableServiceLinks,
        false,
        w.name,
      );
    }
  });

  it("keeps state in claims; volumes shared by several pods are ReadWriteMany", () => {
    const claims = new Map(
      of(run, "kubernetes:core/v1:PersistentVolumeClaim").map((c) => [
        (c.inputs.metadata as { name: string }).name,
        (c.inputs.spec as { accessModes: string[] }).accessModes,
      ]),
    );
    assert.deepEqual(claims.get("postgres-data"), ["ReadWriteOnce"]);
    // A cluster's members each have their own claims, from the StatefulSet's templates.
    const templates = (n: string) =>
      new Map(
        (
          unwrap(named(run, n).inputs.spec) as {
            volumeClaimTemplates: { metadata: { name: string }; spec: { accessModes: string[] } }[];
          }
        ).volumeClaimTemplates.map((t) => [t.metadata.name, t.spec.accessModes]),
      );
    assert.deepEqual([...templates("zookeeper").keys()], ["zookeeper-data", "zookeeper-log"]);
    for (const [n, v] of [
      ["zookeeper", "zookeeper-data"],
      ["kafka", "kafka-data"],
      ["cassandra", "cassandra-data"],
    ]) {
      assert.deepEqual(templates(n).get(v), ["ReadWriteOnce"], v);
      assert.equal(claims.has(v), false, `${v}: a claim shared by the members`);
    }
    for (const v of ["airflow-logs", "spark-checkpoints"]) assert.deepEqual(claims.get(v), ["ReadWriteMany"], v);
    // Non-root images get their group on fresh volumes (Docker volumes inherit the image's owner).
    const fsGroup = (n: string) =>
      (unwrap(named(run, n).inputs.spec) as { template: { spec: { securityContext?: { fsGroup: number } } } }).template
        .spec.securityContext?.fsGroup;
    assert.deepEqual(
      ["kafka", "zookeeper", "airflow-scheduler", "spark-worker", "spark-driver", "prometheus"].map(fsGroup),
      [1000, 1000, 0, 185, 185, 65534],
    );
  });

  it("secrets reach pods only through Secrets, never as plain input", () => {
    assert.equal(run.generated.length, 12);
    const leaks = run.resources.flatMap((r) => plainLeaks(r.inputs, run.generated).map((p) => `${r.name}${p}`));
    assert.deepEqual(leaks, []);
    const pg = podContainer(named(run, "postgres"));
    assert.ok(pg.env.find((e) => e.name === "POSTGRES_PASSWORD")?.valueFrom, "POSTGRES_PASSWORD is not from a Secret");
  });

  it("jobs carry no health check: the exit code is the answer", () => {
    for (const j of of(run, "kubernetes:batch/v1:Job")) {
      const c = podContainer(j);
      assert.equal(c.readinessProbe, undefined, c.name);
      assert.equal((c as { livenessProbe?: unknown }).livenessProbe, undefined, c.name);
    }
  });

  it("the target owns its claims: each hangs under the Target, not under the first component that mounted it", () => {
    const claims = of(run, "kubernetes:core/v1:PersistentVolumeClaim");
    assert.ok(claims.length >= 3);
    for (const c of claims) assert.equal(run.parents.get(c.name), "realtime-pipeline:kubernetes:Target", c.name);
  });

  it("gives the same output contract, internal addresses qualified by the namespace", async () => {
    assert.deepEqual(Object.keys(run.outputs!).sort(), Object.keys(docker.outputs!).sort());
    // Three brokers: each by its own name inside, each at a port of its own outside (port-forwards).
    assert.deepEqual(run.outputs!.kafkaBootstrapServers, {
      internal: [0, 1, 2].map((i) => `kafka-${i}.kafka.${NS}.svc:29092`).join(","),
      host: "127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094",
    });
    assert.deepEqual(run.outputs!.network, { kind: "kubernetes-namespace", name: NS });
    assert.equal(run.outputs!.postgres.host, `postgres.${NS}.svc`);
    assert.equal(run.outputs!.sparkMasterUrl, `spark://spark-master.${NS}.svc:7077`);
    assert.ok((await resolve(run.outputs!.postgresPassword)).secret);
  });
});

describe("infra: Kubernetes settings (cluster, namespace, storage, pulls, platform)", () => {
  let run: Run;
  before(async () => {
    run = await runProgram(STAGING, "staging");
    assert.equal(run.error, undefined, String(run.error));
  });

  it("every Kubernetes object goes through one explicit provider, on the context the stack config names", () => {
    const providers = of(run, "pulumi:providers:kubernetes");
    assert.equal(providers.length, 1);
    assert.equal(providers[0].inputs.context, "staging-cluster");
    const objects = run.resources.filter(
      (r) => r.type.startsWith("kubernetes:") && !r.type.startsWith("pulumi:providers:"),
    );
    assert.ok(objects.length > 40);
    for (const o of objects)
      assert.equal(run.providers.get(o.name), providers[0].name, `${o.type} ${o.name} uses the ambient cluster`);
  });

  it("a kubeconfig path in config reaches the provider, absolute", async () => {
    const r = await runProgram({ ...STAGING, kubeconfig: "clusters/staging.yaml" }, "staging");
    const p = of(r, "pulumi:providers:kubernetes")[0];
    assert.match(String(p.inputs.kubeconfig), /^\/.*\/clusters\/staging\.yaml$/);
  });

  it("uses an existing namespace when createNamespace is false, and does not own it", async () => {
    assert.equal(of(run, "kubernetes:core/v1:Namespace")[0].read, false);
    const r = await runProgram({ ...STAGING, createNamespace: "false" }, "staging");
    assert.equal(r.error, undefined, String(r.error));
    const ns = of(r, "kubernetes:core/v1:Namespace");
    assert.equal(ns.length, 1);
    assert.equal(ns[0].read, true);
  });

  it("shared claims take sharedStorageClass (ReadWriteMany), the others storageClass", async () => {
    const r = await runProgram({ ...STAGING, storageClass: "fast-rwo", sharedStorageClass: "nfs" }, "staging");
    const classes = Object.fromEntries(
      of(r, "kubernetes:core/v1:PersistentVolumeClaim").map((c) => [
        (c.inputs.metadata as { name: string }).name,
        (c.inputs.spec as { storageClassName?: string }).storageClassName,
      ]),
    );
    assert.deepEqual(classes, {
      "postgres-data": "fast-rwo",
      "airflow-logs": "nfs",
      "spark-checkpoints": "nfs",
      "prometheus-data": "fast-rwo",
    });
    for (const n of ["zookeeper", "kafka", "cassandra"]) {
      const w = of(r, "kubernetes:apps/v1:StatefulSet").find(
        (x) => (x.inputs.metadata as { name: string }).name === n,
      )!;
      for (const t of (unwrap(w.inputs.spec) as { volumeClaimTemplates: { spec: { storageClassName: string } }[] })
        .volumeClaimTemplates)
        assert.equal(t.spec.storageClassName, "fast-rwo", n);
    }
  });

  it("node-exporter: a DaemonSet on the selected nodes, the node's / read-only at /host, scraped pod by pod", async () => {
    const r = await runProgram(
      { ...STAGING, nodeSelector: JSON.stringify({ "kubernetes.io/hostname": "node-a" }) },
      "staging",
    );
    assert.equal(r.error, undefined, String(r.error));
    const ds = of(r, "kubernetes:apps/v1:DaemonSet").find(
      (w) => (w.inputs.metadata as { name: string }).name === "node-exporter",
    )!;
    type PodSpec = {
      nodeSelector?: Record<string, string>;
      volumes: { name: string; hostPath?: { path: string; type: string } }[];
    };
    const spec = unwrap(ds.inputs.spec) as { template: { spec: PodSpec }; updateStrategy: unknown };
    assert.deepEqual(spec.template.spec.nodeSelector, { "kubernetes.io/hostname": "node-a" });
    assert.deepEqual(spec.updateStrategy, { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } });
    const host = spec.template.spec.volumes.find((v) => v.hostPath !== undefined)!;
    assert.deepEqual(host.hostPath, { path: "/", type: "Directory" });
    const mount = (podContainer(ds).volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]).find(
      (m) => m.name === host.name,
    );
    assert.deepEqual(mount, { name: host.name, mountPath: "/host", readOnly: true });
    assert.ok(podContainer(ds).args?.includes("--path.rootfs=/host"));
    // Prometheus resolves each node's pod through the headless <name>-pods Service.
    const pods = of(r, "kubernetes:core/v1:Service").find(
      (s) => (s.inputs.metadata as { name: string }).name === "node-exporter-pods",
    );
    assert.equal((pods?.inputs.spec as { clusterIP?: string } | undefined)?.clusterIP, "None");
    // No other workload reads a folder of the node.
    for (const w of of(r, ...WORKLOADS, "kubernetes:batch/v1:Job").filter((x) => x !== ds)) {
      const vols = (unwrap(w.inputs.spec) as { template: { spec: PodSpec } }).template.spec.volumes;
      assert.equal(vols.filter((v) => v.hostPath !== undefined).length, 0, w.name);
    }
  });

  it("no pod gets a service-account token; every pod runs under RuntimeDefault seccomp, no container escalates", () => {
    interface Sec {
      automountServiceAccountToken?: boolean;
      securityContext?: { seccompProfile?: { type: string } };
      containers: { name: string; securityContext?: { allowPrivilegeEscalation?: boolean } }[];
      initContainers?: { name: string; securityContext?: { allowPrivilegeEscalation?: boolean } }[];
    }
    const workloads = of(run, ...WORKLOADS, "kubernetes:batch/v1:Job");
    assert.ok(workloads.length >= 17);
    for (const w of workloads) {
      const pod = (unwrap(w.inputs.spec) as { template: { spec: Sec } }).template.spec;
      assert.equal(pod.automountServiceAccountToken, false, `${w.name}: a service-account token`);
      assert.equal(pod.securityContext?.seccompProfile?.type, "RuntimeDefault", `${w.name}: seccomp`);
      for (const c of [...pod.containers, ...(pod.initContainers ?? [])])
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${w.name}/${c.name}: privilege escalation`);
    }
  });

  it("the images that never need root run as their own uid with every capability dropped, as do the folder copies", () => {
    type Ctx = { runAsNonRoot?: boolean; runAsUser?: number; capabilities?: { drop?: string[] } };
    const expected: Record<string, number> = {
      api: 1000,
      relay: 1000,
      processor: 1000,
      "lag-exporter": 1000,
      prometheus: 65_534,
      "postgres-exporter": 65_534,
      pushgateway: 65_534,
      "statsd-exporter": 65_534,
      "node-exporter": 65_534,
    };
    const seen = new Set<string>();
    for (const w of of(run, ...WORKLOADS, "kubernetes:batch/v1:Job")) {
      type Containers = { name: string; securityContext?: Ctx }[];
      const pod = (
        unwrap(w.inputs.spec) as { template: { spec: { containers: Containers; initContainers?: Containers } } }
      ).template.spec;
      const locked = [
        ...pod.containers.filter((c) => expected[c.name] !== undefined),
        ...(pod.initContainers ?? []).filter((c) => c.name.startsWith("copy-")),
      ];
      for (const c of locked) {
        seen.add(c.name);
        const ctx = c.securityContext;
        assert.equal(ctx?.runAsNonRoot, true, `${w.name}/${c.name}: runAsNonRoot`);
        assert.equal(ctx?.runAsUser, expected[c.name] ?? 65_534, `${w.name}/${c.name}: runAsUser`);
        assert.deepEqual(ctx?.capabilities?.drop, ["ALL"], `${w.name}/${c.name}: capabilities`);
      }
    }
    for (const name of [...Object.keys(expected), "copy-folder-0"]) assert.ok(seen.has(name), `no container ${name}`);
  });

  it("pods pull with the configured imagePullSecrets; images build for the configured platform", async () => {
    for (const w of of(run, ...WORKLOADS))
      assert.equal(
        (unwrap(w.inputs.spec) as { template: { spec: { imagePullSecrets?: unknown } } }).template.spec
          .imagePullSecrets,
        undefined,
      );
    const r = await runProgram(
      { ...STAGING, imagePullSecrets: JSON.stringify(["regcred"]), imagePlatform: "linux/arm64" },
      "staging",
    );
    assert.equal(r.error, undefined, String(r.error));
    const workloads = of(r, ...WORKLOADS, "kubernetes:batch/v1:Job");
    assert.ok(workloads.length >= 17); // ingest runs in the Airflow DAG, not as a workload of its own
    for (const w of workloads) {
      assert.deepEqual(
        (unwrap(w.inputs.spec) as { template: { spec: { imagePullSecrets?: unknown } } }).template.spec
          .imagePullSecrets,
        [{ name: "regcred" }],
        w.name,
      );
    }
    for (const i of of(r, "docker:index/image:Image"))
      assert.equal((i.inputs.build as { platform: string }).platform, "linux/arm64");
    for (const i of of(run, "docker:index/image:Image"))
      assert.equal((i.inputs.build as { platform: string }).platform, "linux/amd64");
  });
});
