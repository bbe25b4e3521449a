/**
 * staging and prod under the real engine against a real Kubernetes API (scripts/services up k8s:
 * kube-apiserver, controller-manager, scheduler, kwok nodes), images built by the real docker
 * provider and pushed to the local registry: preview clean, up (every resource created, every
 * await passed), a second preview with no change, another team's program reading the outputs
 * with a StackReference, destroy.
 *
 * The two stacks also cover the cluster shapes a real one has:
 * - staging: its default-class claims on a ReadWriteOnce-only class (as most clusters' defaults
 *   are), the shared claims on the class that offers ReadWriteMany (sharedStorageClass); the
 *   program creates its namespace and destroy removes it.
 * - prod: a namespace made beforehand by the cluster's admins (createNamespace false), with the
 *   pull secret for the registry in it (imagePullSecrets); destroy leaves the namespace.
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { execFileSync } from "node:child_process";
import { Stack } from "@pulumi/pulumi/automation";
import { Operation, Project, REPO, Tools, buildCa, exists, kubectl, report, tools } from "./harness";
import { SECRET_OUTPUTS } from "../../infra/outputs";

const KUBE_TYPES = [
  "kubernetes:apps/v1:StatefulSet",
  "kubernetes:apps/v1:Deployment",
  "kubernetes:batch/v1:Job",
  "kubernetes:core/v1:PersistentVolumeClaim",
];
/** A run-unique suffix for the cluster objects the test itself makes (a re-run on a kept cluster). */
const RUN = `${process.pid}`;

interface Item {
  metadata: { name: string };
  spec: {
    replicas?: number;
    template?: {
      spec: { imagePullSecrets?: { name: string }[]; affinity?: { podAntiAffinity?: Record<string, unknown[]> } };
    };
    storageClassName?: string;
    accessModes?: string[];
    volumeClaimTemplates?: { metadata: { name: string } }[];
    podManagementPolicy?: string;
    maxUnavailable?: number;
  };
  status: {
    readyReplicas?: number;
    availableReplicas?: number;
    succeeded?: number;
    phase?: string;
    conditions?: { type: string; status: string }[];
  };
}

function apply(t: Tools, manifest: string): void {
  execFileSync(t.kubectl!, ["--kubeconfig", t.kubeconfig!, "apply", "-f", "-"], {
    input: manifest,
    stdio: ["pipe", "ignore", "pipe"],
  });
}

function del(t: Tools, ...args: string[]): void {
  execFileSync(t.kubectl!, ["--kubeconfig", t.kubeconfig!, "delete", "--ignore-not-found", "--wait=false", ...args], {
    stdio: ["ignore", "ignore", "pipe"],
  });
}

/** A ReadWriteOnce-only class with its own volumes: what most clusters' default class offers. */
function rwoOnlyClass(t: Tools, name: string, volumes: number): void {
  const pvs = Array.from(
    { length: volumes },
    (_, i) => `---
apiVersion: v1
kind: PersistentVolume
metadata: {name: ${name}-${i}}
spec:
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ${name}
  hostPath: {path: /tmp/${name}-${i}}
`,
  ).join("");
  apply(
    t,
    `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: ${name}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: Immediate
${pvs}`,
  );
}

interface Case {
  stack: "staging" | "prod";
  namespace: string;
  config: (t: Tools) => Record<string, string>;
  /** Cluster objects the test makes before the stack (and removes after). */
  setup?: (t: Tools) => void;
  cleanup?: (t: Tools) => void;
  /** Whether destroy removes the namespace (the stack made it) or leaves it (it was there before). */
  ownsNamespace: boolean;
}

const RWO_CLASS = `rwo-only-${RUN}`;
const CASES: Case[] = [
  {
    stack: "staging",
    namespace: "realtime-pipeline-staging",
    config: () => ({ storageClass: RWO_CLASS, sharedStorageClass: "standard" }),
    // postgres-data, and the members' own claims: 3 × (zookeeper-data, zookeeper-log, kafka-data, cassandra-data).
    setup: (t) => rwoOnlyClass(t, RWO_CLASS, 16),
    cleanup: (t) => {
      del(t, "storageclass", RWO_CLASS);
      del(t, "pv", ...Array.from({ length: 16 }, (_, i) => `${RWO_CLASS}-${i}`));
    },
    ownsNamespace: true,
  },
  {
    stack: "prod",
    namespace: "realtime-pipeline-prod",
    config: () => ({ createNamespace: "false", imagePullSecrets: JSON.stringify(["regcred"]) }),
    setup: (t) =>
      apply(
        t,
        `apiVersion: v1
kind: Namespace
metadata: {name: realtime-pipeline-prod}
---
apiVersion: v1
kind: Secret
metadata: {name: regcred, namespace: realtime-pipeline-prod}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{"auths":{"${t.registry}":{"auth":"${Buffer.from("puller:not-a-real-password").toString("base64")}"}}}'
`,
      ),
    cleanup: (t) => del(t, "namespace", "realtime-pipeline-prod"),
    ownsNamespace: false,
  },
];

/** The settings every kubernetes stack gets here: this machine's cluster, its registry. */
function clusterConfig(t: Tools): Record<string, string> {
  assert.ok(
    t.kubeconfig && t.registry,
    "services.env lacks K8S_KUBECONFIG or IMAGE_REGISTRY: scripts/services up k8s image-registry",
  );
  // The kwok node (its pods are pretend): a real node beside it runs the real-node ring's stack.
  // protectData false: destroy removes the claims here; the protection itself is proven there.
  return {
    registry: t.registry,
    kubeconfig: t.kubeconfig,
    kubeContext: "local",
    nodeSelector: JSON.stringify({ type: "kwok" }),
    protectData: "false",
  };
}

for (const c of CASES) {
  describe(`stacks: ${c.stack} on a real Kubernetes API (the real engine)`, function () {
    this.timeout(30 * 60 * 1000);
    let project: Project;
    let stack: Stack;
    let t: Tools;
    let preview: Operation;

    before(async () => {
      t = tools();
      project = await Project.create(t);
      // A cluster left running between runs keeps what a run killed before its after() made, and the
      // next up fails with "already exists" (seen in a CI trial after a killed run). Start from none.
      if (exists(t, "namespace", c.namespace)) {
        execFileSync(
          t.kubectl!,
          ["--kubeconfig", t.kubeconfig!, "delete", "namespace", c.namespace, "--wait=true", "--timeout=300s"],
          { stdio: ["ignore", "ignore", "pipe"] },
        );
      }
      c.setup?.(t);
      const ca = buildCa(project.root);
      stack = await project.stack(c.stack, {
        ...clusterConfig(t),
        ...c.config(t),
        ...(ca ? { buildCaCertificates: ca } : {}),
      });
    });

    after(async () => {
      // Whatever happened above, leave nothing behind: the stack's resources, then ours.
      try {
        if (stack && exists(t, "namespace", c.namespace) && (await stack.exportStack()).deployment.resources?.length)
          await stack.destroy();
      } finally {
        c.cleanup?.(t);
        project?.remove();
      }
    });

    it("preview is clean: every resource to create, the cluster named, no warning", async () => {
      preview = await project.preview(stack);
      report(c.stack, preview);
      assert.deepEqual(preview.errors, []);
      assert.deepEqual(preview.warnings, [], "warnings in preview");
      assert.deepEqual(Object.keys(preview.changes), ["create"]);
      assert.ok(preview.changes.create! > 60, `only ${preview.changes.create} resources`);
      // One explicit provider, the stack's own: no default provider (the shell's kubeconfig) for anything.
      const providers = preview.steps
        .filter((s) => s.type.startsWith("pulumi:providers:"))
        .map((s) => `${s.type} ${s.name}`);
      assert.ok(
        providers.includes(`pulumi:providers:kubernetes realtime-pipeline-${c.stack}-k8s`),
        providers.join(", "),
      );
      assert.deepEqual(
        providers.filter((p) => p.startsWith("pulumi:providers:kubernetes")),
        [`pulumi:providers:kubernetes realtime-pipeline-${c.stack}-k8s`],
      );
      assert.match(
        preview.stdout,
        new RegExp(
          `kubernetes: context local of ${t.kubeconfig!.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}, namespace ${c.namespace}`,
        ),
      );
    });

    it("up creates every resource and passes every await: pods Ready, Jobs Complete, claims Bound", async () => {
      const up = await project.up(stack);
      report(c.stack, up);
      assert.deepEqual(up.failed, []);
      assert.deepEqual(up.changes, preview.changes, "up did other than the preview said");
      const declared = up.steps.filter((s) => KUBE_TYPES.includes(s.type));
      const items = (kind: string) => kubectl<{ items: Item[] }>(t, "get", kind, "-n", c.namespace).items;
      const byKind = {
        "kubernetes:apps/v1:StatefulSet": items("statefulsets"),
        "kubernetes:apps/v1:Deployment": items("deployments"),
        "kubernetes:batch/v1:Job": items("jobs"),
        "kubernetes:core/v1:PersistentVolumeClaim": items("persistentvolumeclaims"),
      };
      // Every object the engine created is in the cluster, and nothing else is (but the claims the
      // StatefulSets made for their members from their templates).
      const memberClaims = byKind["kubernetes:apps/v1:StatefulSet"].flatMap((s) =>
        (s.spec.volumeClaimTemplates ?? []).flatMap((v) =>
          Array.from({ length: s.spec.replicas ?? 1 }, (_, i) => `${v.metadata.name}-${s.metadata.name}-${i}`),
        ),
      );
      assert.equal(memberClaims.length, 12, memberClaims.join(", "));
      for (const [type, list] of Object.entries(byKind)) {
        const extra: number = type === "kubernetes:core/v1:PersistentVolumeClaim" ? memberClaims.length : 0;
        assert.equal(
          list.length,
          declared.filter((s) => s.type === type).length + extra,
          `${type}: ${list.map((i) => i.metadata.name)}`,
        );
      }
      for (const c of memberClaims)
        assert.ok(
          byKind["kubernetes:core/v1:PersistentVolumeClaim"].some((p) => p.metadata.name === c),
          `${c} missing`,
        );
      assert.equal(byKind["kubernetes:apps/v1:StatefulSet"].length, 5); // postgres, zookeeper, kafka, cassandra, prometheus
      for (const s of byKind["kubernetes:apps/v1:StatefulSet"])
        assert.equal(s.status.readyReplicas, s.spec.replicas, `${s.metadata.name} not ready`);
      for (const d of byKind["kubernetes:apps/v1:Deployment"])
        assert.equal(d.status.availableReplicas, d.spec.replicas, `${d.metadata.name} not available`);
      for (const j of byKind["kubernetes:batch/v1:Job"]) {
        assert.ok(
          j.status.conditions?.some((x) => x.type === "Complete" && x.status === "True"),
          `${j.metadata.name} not complete`,
        );
      }
      for (const p of byKind["kubernetes:core/v1:PersistentVolumeClaim"])
        assert.equal(p.status.phase, "Bound", `${p.metadata.name} not bound`);
      // The images the pods run were pushed to the registry and are pinned by digest.
      const images = [...byKind["kubernetes:apps/v1:Deployment"], ...byKind["kubernetes:apps/v1:StatefulSet"]]
        .flatMap((w) =>
          (w.spec.template!.spec as unknown as { containers: { image: string }[] }).containers.map((x) => x.image),
        )
        .filter((i) => i.startsWith(`${t.registry}/`));
      assert.ok(images.length >= 8, `project images: ${images}`);
      for (const i of images) assert.match(i, /@sha256:[0-9a-f]{64}$/);
      for (const repo of new Set(images.map((i) => i.slice(t.registry!.length + 1).split("@")[0]))) {
        const tags = JSON.parse(
          execFileSync("curl", ["-fsS", `http://${t.registry}/v2/${repo}/tags/list`], { encoding: "utf8" }),
        ) as { tags: string[] };
        assert.ok(tags.tags.length > 0, `${repo} not in the registry`);
      }
    });

    it("replicated: 3 ZooKeeper, 3 brokers, 3 Cassandra nodes Ready, each cluster with a PodDisruptionBudget (maxUnavailable 1) and anti-affinity", () => {
      const sets = kubectl<{ items: Item[] }>(t, "get", "statefulsets", "-n", c.namespace).items;
      const pdbs = kubectl<{ items: Item[] }>(t, "get", "poddisruptionbudgets", "-n", c.namespace).items;
      for (const n of ["zookeeper", "kafka", "cassandra"]) {
        const s = sets.find((x) => x.metadata.name === n)!;
        assert.equal(s.spec.replicas, 3, n);
        assert.equal(s.status.readyReplicas, 3, n);
        assert.equal(s.spec.podManagementPolicy, n === "cassandra" ? "OrderedReady" : "Parallel", n);
        assert.ok(
          s.spec.template!.spec.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.length,
          `${n}: no anti-affinity`,
        );
        assert.equal(pdbs.find((p) => p.metadata.name === n)?.spec.maxUnavailable, 1, `${n}: no PodDisruptionBudget`);
      }
      assert.deepEqual(pdbs.map((p) => p.metadata.name).sort(), ["cassandra", "kafka", "zookeeper"]);
      // The API server's own view of the budget: 3 pods expected, 1 may go.
      for (const p of pdbs)
        assert.equal(
          (p.status as { expectedPods?: number; disruptionsAllowed?: number }).disruptionsAllowed,
          1,
          p.metadata.name,
        );
      const processor = kubectl<{ items: Item[] }>(t, "get", "deployments", "-n", c.namespace).items.find(
        (d) => d.metadata.name === "processor",
      )!;
      assert.equal(processor.status.availableReplicas, 3);
    });

    if (c.stack === "staging") {
      it("shared claims are ReadWriteMany on sharedStorageClass; the others on storageClass (ReadWriteOnce only)", () => {
        const claims = kubectl<{ items: Item[] }>(t, "get", "pvc", "-n", c.namespace).items;
        for (const p of claims) {
          const shared = p.spec.accessModes!.includes("ReadWriteMany");
          assert.equal(p.spec.storageClassName, shared ? "standard" : RWO_CLASS, p.metadata.name);
        }
        assert.deepEqual(
          claims
            .filter((p) => p.spec.accessModes!.includes("ReadWriteMany"))
            .map((p) => p.metadata.name)
            .sort(),
          ["airflow-logs", "spark-checkpoints"],
        );
      });
    } else {
      it("pods pull with the namespace's pull secret", () => {
        const workloads = [
          ...kubectl<{ items: Item[] }>(t, "get", "deployments,statefulsets,jobs", "-n", c.namespace).items,
        ];
        assert.ok(workloads.length >= 17);
        for (const w of workloads)
          assert.deepEqual(w.spec.template!.spec.imagePullSecrets, [{ name: "regcred" }], w.metadata.name);
      });
    }

    it("a second preview shows no change", async () => {
      const again = await project.preview(stack, { expectNoChanges: true });
      report(`${c.stack} (again)`, again);
      // An existing namespace is read again (prod): a read is not a change.
      assert.deepEqual(
        Object.keys(again.changes).filter((k) => k !== "same" && k !== "read"),
        [],
        JSON.stringify(again.changes),
      );
      assert.deepEqual(again.warnings, []);
    });

    it("another team's program reads the outputs with a StackReference: names, shapes, which are secret", async () => {
      const dir = path.join(project.root, "consumer");
      fs.mkdirSync(dir);
      for (const f of ["Pulumi.yaml", "package.json", "index.ts"])
        fs.copyFileSync(path.join(REPO, "tests/fixtures/consumer", f), path.join(dir, f));
      for (const f of ["node_modules", "tsconfig.json"]) fs.symlinkSync(path.join(REPO, f), path.join(dir, f));
      const consumer = await project.stack(
        c.stack,
        { "pipeline-consumer:pipeline": `organization/realtime-pipeline/${c.stack}` },
        dir,
      );
      const up = await project.up(consumer);
      assert.deepEqual(up.errors, []);
      assert.deepEqual(up.warnings, []);
      const out = await consumer.outputs();
      const seen = out.seen.value as Record<string, { secret: boolean; shape: string }>;
      assert.deepEqual(
        Object.entries(seen)
          .filter(([, s]) => s.secret)
          .map(([n]) => n)
          .sort(),
        [...SECRET_OUTPUTS].sort(),
      );
      assert.ok(Object.values(seen).every((s) => s.shape === "ok"));
      // Internal addresses resolve from another namespace: they carry this one.
      assert.equal(out.brokers.value, [0, 1, 2].map((i) => `kafka-${i}.kafka.${c.namespace}.svc:29092`).join(","));
      assert.equal(out.postgresHost.value, `postgres.${c.namespace}.svc`);
      assert.equal(out.brokers.secret, false);
      await consumer.destroy();
    });

    it(`destroy removes every resource${c.ownsNamespace ? " and the namespace" : " and leaves the namespace it did not make"}`, async () => {
      const destroyed = await project.destroy(stack);
      report(c.stack, destroyed);
      assert.deepEqual(destroyed.failed, []);
      assert.deepEqual(
        (await stack.exportStack()).deployment.resources ?? [],
        [],
        "resources left in the stack's state",
      );
      assert.equal(exists(t, "namespace", c.namespace), !c.ownsNamespace);
      if (!c.ownsNamespace) {
        // The members' claims outlive their StatefulSets (retention policy Retain): the data of a
        // namespace the stack did not make is the admins' to delete. Nothing else is left.
        const left = () =>
          kubectl<{ items: Item[] }>(
            t,
            "get",
            "deployments,statefulsets,jobs,pvc,services,configmaps,poddisruptionbudgets",
            "-n",
            c.namespace,
          ).items.filter((i) => i.metadata.name !== "kube-root-ca.crt");
        const members = (i: Item) =>
          /^(zookeeper-data|zookeeper-log|kafka-data|cassandra-data)-(zookeeper|kafka|cassandra)-[0-9]+$/.test(
            i.metadata.name,
          );
        for (let i = 0; i < 60 && left().some((x) => !members(x)); i++) await new Promise((r) => setTimeout(r, 1000));
        assert.deepEqual(
          left()
            .filter((x) => !members(x))
            .map((i) => i.metadata.name),
          [],
        );
        assert.equal(left().length, 12, "the members' claims are kept");
      }
    });
  });
}
