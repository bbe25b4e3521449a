/**
 * The Kubernetes target: the same specs become a StatefulSet for a stateful service, a Deployment
 * for a stateless one, a DaemonSet for one on every machine, a Job for a job, and a Service per
 * process: headless where peers dial the pods themselves (members, self-addressed processes), a
 * ClusterIP over the ready pods otherwise.
 * Start order by health comes from Pulumi's await logic: a StatefulSet or Deployment is created
 * once its pods are ready (the readiness probe is the spec's health check), a Job once complete.
 *
 * Day-2 changes keep data: a StatefulSet that must be replaced (a new claim template) leaves its
 * members' claims, and the new set binds them again; the stack's own claims are protected.
 */
import { createHash } from "node:crypto";
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  FileSpec,
  ImageFolder,
  HealthCheck,
  ImageSpec,
  JobHandle,
  JobSpec,
  Owner,
  ProcessSpec,
  ServiceHandle,
  ScrapeAddresses,
  ServiceSpec,
  StackNetwork,
  Target,
  checkService,
  dependencyResources,
  makeHandle,
  memoryMiB,
  repoPath,
} from "../spec";

export interface KubernetesTargetArgs {
  prefix: string;
  namespace: string;
  /** Registry the project's images are pushed to; the cluster pulls them from there. */
  registry: string;
  /** Storage class of the claims; the cluster default when absent. */
  storageClass?: string;
  /** Storage class of the shared (ReadWriteMany) claims; storageClass when absent. */
  sharedStorageClass?: string;
  /**
   * The kubeconfig file (absent: $KUBECONFIG, else ~/.kube/config) and the context in it: never the shell's current
   * one.
   */
  kubeconfig?: string;
  context: string;
  /** false: the namespace exists already (the cluster's admins made it); the stack uses it and never deletes it. */
  createNamespace: boolean;
  /** Secrets the pods pull the project's images with (private registries). */
  imagePullSecrets: string[];
  /** The platform the project's images are built for (the nodes'). */
  imagePlatform: string;
  /** How a replicated workload's pods are spread over nodes (see the stage config). */
  antiAffinity: "preferred" | "required";
  /** Size of each volume's claims (a Kubernetes quantity). */
  claimSizes: Record<string, string>;
  /** The stack's own claims refuse replacement and deletion (Pulumi `protect`). */
  protectData: boolean;
  /** Labels of the nodes the pods run on. */
  nodeSelector: Record<string, string>;
}

function probe(hc: HealthCheck, failures: number, delay = hc.startPeriodSeconds ?? 20): k8s.types.input.core.v1.Probe {
  return {
    exec: { command: hc.command },
    initialDelaySeconds: delay,
    periodSeconds: hc.intervalSeconds ?? 10,
    timeoutSeconds: hc.timeoutSeconds ?? 5,
    failureThreshold: failures,
  };
}

/**
 * Every container: no process gains privileges beyond its parent's (setuid binaries, file
 * capabilities). Images that start as root and step down (gosu) keep working: stepping down needs
 * no new privilege.
 */
const NO_ESCALATION: k8s.types.input.core.v1.SecurityContext = { allowPrivilegeEscalation: false };

/** The uid of a copy that needs none of its own (Debian's `nobody`). */
const NOBODY = 65_534;

/** A container whose image never needs root: pinned to its uid, every capability dropped. */
function nonRoot(user: number): k8s.types.input.core.v1.SecurityContext {
  return { ...NO_ESCALATION, runAsNonRoot: true, runAsUser: user, capabilities: { drop: ["ALL"] } };
}

/**
 * Gives a group a volume's files, writable, unless the volume's root is that group's and
 * group-writable already (a restart): a fresh hostPath root is root:root 0755, group 0 included.
 */
export function volumeGroupScript(group: number, paths: string[]): string {
  return paths
    .map(
      (p) =>
        `{ [ "$(stat -c %g:%A '${p}' | cut -c1-${String(group).length + 7})" = "${group}:drwxrw" ] || { chgrp -R ${group} '${p}' && chmod -R g+rwX '${p}'; }; }`,
    )
    .join(" && ");
}

/**
 * An argument as the process must see it: the kubelet reads `$(NAME)` in a container's command and
 * args as the env variable NAME, and `$$` as `$` (a shell script's `DO $$ ... $$` arrived as `$`),
 * where Docker passes them untouched. Doubling every `$` keeps them literal on both targets.
 */
export function literalArg(arg: string): string {
  return arg.replace(/\$/g, "$$$$");
}

const READY_FAILURES = 3;
/** What the output contract calls the place a Kubernetes stack's addresses resolve. */
export const KUBERNETES_NAMESPACE = "kubernetes-namespace";
/** Pod template annotation: the hash of a service's files (its ConfigMap), so a change of one rolls the pods. */
export const FILES_HASH = "realtime-pipeline/files-sha256";

/** Seconds a check may take to pass the first time: its start period and every retry. */
export function startBudgetSeconds(hc: HealthCheck): number {
  return (hc.startPeriodSeconds ?? 20) + (hc.retries ?? 10) * ((hc.intervalSeconds ?? 10) + (hc.timeoutSeconds ?? 5));
}

/**
 * Readiness is the health check (ready to serve). Liveness is the alive check only, after a
 * startup probe of the same check that allows the whole start budget: a member whose peers are
 * down stays up, and a slow first start (a Cassandra bootstrap) is not a failure.
 */
function containerProbes(spec: ServiceSpec): Partial<k8s.types.input.core.v1.Container> {
  // Not ready after 3 failed checks: clients and budgets see a member leave quickly. A failing
  // readiness probe restarts nothing; the start budget is the startup probe's and Pulumi's wait.
  const ready = probe(spec.healthCheck, READY_FAILURES);
  const alive = spec.aliveCheck;
  if (!alive) return { readinessProbe: ready };
  const period = alive.intervalSeconds ?? 10;
  return {
    readinessProbe: ready,
    startupProbe: probe(alive, Math.ceil(startBudgetSeconds(spec.healthCheck) / period), 0),
    livenessProbe: probe(alive, alive.retries ?? 6, 0),
  };
}

/**
 * How long Pulumi waits for a workload: every member's start budget when they start one by one,
 * one budget when together; at least 10 minutes (a loaded small cluster pulls images first).
 */
export function awaitMinutes(spec: ServiceSpec, replicas: number): number {
  const one = startBudgetSeconds(spec.healthCheck) + (spec.stop?.graceSeconds ?? 30);
  const members = spec.cluster?.start === "one-by-one" ? replicas : 1;
  return Math.max(10, Math.ceil((members * one) / 60));
}

interface Pod {
  /** What the pod's resources are named from: `<owner>-<process>`. */
  name: string;
  metadata: { name: string; namespace: pulumi.Output<string>; labels: Record<string, string> };
  labels: Record<string, string>;
  spec: k8s.types.input.core.v1.PodSpec;
  opts: pulumi.CustomResourceOptions;
}

export class KubernetesTarget extends pulumi.ComponentResource implements Target {
  readonly prefix: string;
  readonly network: StackNetwork;
  readonly namespace: k8s.core.v1.Namespace;
  /** Every Kubernetes object of the stack goes through it: the cluster the stack config names. */
  readonly provider: k8s.Provider;
  private readonly claims = new Map<string, k8s.core.v1.PersistentVolumeClaim>();
  /** Services whose own Service is headless (their name resolves to each pod). */
  private readonly headless = new Set<string>();
  private readonly args: KubernetesTargetArgs;
  /** Its own children (provider, namespace, claims) are named from it. */
  private readonly ownName: string;

  constructor(name: string, args: KubernetesTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:kubernetes:Target", name, {}, opts);
    this.ownName = name;
    this.prefix = args.prefix;
    this.args = args;
    this.provider = new k8s.Provider(
      `${name}-k8s`,
      { kubeconfig: args.kubeconfig, context: args.context },
      { parent: this },
    );
    // Said in every preview and update: which cluster, before anything is touched.
    pulumi.log.info(
      `kubernetes: context ${args.context} of ${args.kubeconfig ?? "$KUBECONFIG or ~/.kube/config"}, namespace ${args.namespace}${args.createNamespace ? "" : " (existing)"}`,
      this,
    );
    this.namespace = args.createNamespace
      ? new k8s.core.v1.Namespace(
          `${name}-ns`,
          { metadata: { name: args.namespace } },
          { parent: this, provider: this.provider },
        )
      : k8s.core.v1.Namespace.get(`${name}-ns`, args.namespace, { parent: this, provider: this.provider });
    this.network = { kind: KUBERNETES_NAMESPACE, name: args.namespace };
    this.registerOutputs({ namespace: this.namespace.metadata.name, context: args.context });
  }

  /** The Service's name qualified by its namespace: it resolves from any namespace of the cluster. */
  dnsName(service: string): string {
    return `${service}.${this.args.namespace}.svc`;
  }

  /** A StatefulSet pod's own name, through the headless Service of its set. */
  memberDnsName(service: string, ordinal: number): string {
    return `${service}-${ordinal}.${service}.${this.args.namespace}.svc`;
  }

  /**
   * A headless Service's name resolves to each pod, not-ready ones included (a pod failing its
   * probe is scraped: up 0 or its metrics): the set's own for a self-addressed service, else
   * `<name>-pods`, made beside the ClusterIP one for a service with metrics.
   */
  scrapeAddresses(service: string): ScrapeAddresses {
    return {
      dnsName: this.headless.has(service) ? this.dnsName(service) : `${service}-pods.${this.args.namespace}.svc`,
    };
  }

  /** Ports are not published on a cluster: `kubectl port-forward` opens them on this machine. */
  outsideAddress(publishedPort: number): string {
    return `127.0.0.1:${publishedPort}`;
  }

  service(spec: ServiceSpec, owner: Owner): ServiceHandle {
    const replicas = checkService(spec);
    const pod = this.pod(spec, owner, containerProbes(spec));
    const selector = { matchLabels: pod.labels };
    const clustered = spec.state === "stateful" && spec.cluster !== undefined && replicas > 1;
    const podSpec =
      replicas > 1
        ? { ...pod.spec, affinity: this.spread(pod.labels, clustered ? this.args.antiAffinity : "preferred") }
        : pod.spec;
    // A ConfigMap change alone restarts nothing: the files' hash in the template rolls the pods.
    const filesHash =
      (spec.files ?? []).length > 0
        ? createHash("sha256").update(JSON.stringify(spec.files)).digest("hex").slice(0, 16)
        : undefined;
    const annotations = filesHash === undefined ? {} : { annotations: { [FILES_HASH]: filesHash } };
    const template = { metadata: { labels: pod.labels, ...annotations }, spec: podSpec };
    const wait = `${awaitMinutes(spec, replicas)}m`;
    const opts = { ...pod.opts, customTimeouts: { create: wait, update: wait } };
    let resource: pulumi.Resource;
    if (spec.everyMachine) {
      // One pod per node (the nodeSelector's), replaced one node at a time.
      const updateStrategy = { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 1 } };
      resource = new k8s.apps.v1.DaemonSet(
        pod.name,
        { metadata: pod.metadata, spec: { selector, template, updateStrategy } },
        opts,
      );
    } else if (spec.state === "stateless") {
      // Recreate: the old pods are gone before new ones start (never two relays or two drivers).
      const strategy = spec.exclusive
        ? { type: "Recreate" }
        : { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } };
      resource = new k8s.apps.v1.Deployment(
        pod.name,
        { metadata: pod.metadata, spec: { replicas, selector, template, strategy } },
        opts,
      );
    } else if (!clustered) {
      resource = new k8s.apps.v1.StatefulSet(
        pod.name,
        { metadata: pod.metadata, spec: { serviceName: spec.name, replicas, selector, template } },
        opts,
      );
    } else {
      resource = new k8s.apps.v1.StatefulSet(
        pod.name,
        {
          metadata: pod.metadata,
          spec: {
            serviceName: spec.name,
            replicas,
            selector,
            template,
            podManagementPolicy: spec.cluster!.start === "together" ? "Parallel" : "OrderedReady",
            // One pod at a time, highest ordinal first, each Ready (in the cluster) before the
            // next goes: a rolling update never takes a second member of a quorum down.
            updateStrategy: { type: "RollingUpdate", rollingUpdate: { partition: 0 } },
            // Each member's own volumes (kafka-data-kafka-0, ...) outlive the set: a set replaced
            // for a new claim template binds them again, a shrunk set finds them when it grows.
            persistentVolumeClaimRetentionPolicy: { whenDeleted: "Retain", whenScaled: "Retain" },
            volumeClaimTemplates: (spec.volumes ?? []).map((v) => ({
              metadata: { name: v.volume },
              spec: {
                accessModes: ["ReadWriteOnce"],
                storageClassName: this.args.storageClass,
                resources: { requests: { storage: this.claimSize(v.volume) } },
              },
            })),
          },
        },
        opts,
      );
      // Drains (node upgrades, autoscaler) evict one member at a time, and only while the others are Ready.
      new k8s.policy.v1.PodDisruptionBudget(
        `${pod.name}-pdb`,
        { metadata: pod.metadata, spec: { maxUnavailable: 1, selector } },
        { parent: owner.parent, provider: this.provider },
      );
    }
    return makeHandle("service", spec, resource, this);
  }

  /** Pods of one workload on different nodes (hostname topology): losing a node loses one of them. */
  private spread(labels: Record<string, string>, mode: "preferred" | "required"): k8s.types.input.core.v1.Affinity {
    const term = { labelSelector: { matchLabels: labels }, topologyKey: "kubernetes.io/hostname" };
    return {
      podAntiAffinity:
        mode === "required"
          ? { requiredDuringSchedulingIgnoredDuringExecution: [term] }
          : { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: term }] },
    };
  }

  job(spec: JobSpec, owner: Owner): JobHandle {
    const pod = this.pod(spec, owner, {});
    const template = { metadata: { labels: pod.labels }, spec: { ...pod.spec, restartPolicy: "OnFailure" } };
    const resource = new k8s.batch.v1.Job(
      pod.name,
      { metadata: pod.metadata, spec: { backoffLimit: 4, template } },
      pod.opts,
    );
    return makeHandle("job", spec, resource, this);
  }

  image(spec: ImageSpec, owner: Owner): pulumi.Output<string> {
    const image = new docker.Image(
      `${owner.name}-${spec.name}-image`,
      {
        imageName: `${this.args.registry}/${this.prefix}-${spec.name}:${spec.tag}`,
        build: {
          context: repoPath(spec.context),
          dockerfile: repoPath(spec.dockerfile),
          args: spec.args,
          platform: this.args.imagePlatform,
        },
      },
      { parent: owner.parent },
    );
    // By digest: a rebuilt image under the same tag still rolls the pods.
    return image.repoDigest;
  }

  /** Everything a pod of `spec` needs: its Secret, files, headless Service, claims, and the pod spec. */
  private pod(
    spec: ProcessSpec & { replicas?: number; cluster?: unknown },
    owner: Owner,
    probes: Partial<k8s.types.input.core.v1.Container>,
  ): Pod {
    const name = `${owner.name}-${spec.name}`;
    const parent = owner.parent;
    const namespace = this.namespace.metadata.name;
    const labels = { "app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": this.prefix };
    const metadata = { name: spec.name, namespace, labels };
    const secretKeys = Object.keys(spec.secretEnv ?? {});
    const secret =
      secretKeys.length > 0
        ? new k8s.core.v1.Secret(
            `${name}-env`,
            { metadata: { ...metadata, name: `${spec.name}-env` }, stringData: pulumi.secret(spec.secretEnv ?? {}) },
            { parent, provider: this.provider },
          )
        : undefined;
    const files = spec.files ?? [];
    const configMap =
      files.length > 0
        ? new k8s.core.v1.ConfigMap(
            `${name}-files`,
            {
              metadata: { ...metadata, name: `${spec.name}-files` },
              data: Object.fromEntries(files.map((f, i) => [`f${i}`, f.content])),
            },
            { parent, provider: this.provider },
          )
        : undefined;

    const ports = Object.entries(spec.ports).map(([role, p]) => ({ name: role, port: p.container }));
    const service = spec as Partial<ServiceSpec>;
    if (ports.length > 0) {
      const selfAddressed = service.state === "stateful" || service.selfAddressed === true;
      // Headless where peers dial the pods themselves (Cassandra's seeds, Kafka's advertised
      // listener, Spark's driver), not-ready pods included: Cassandra resolves its seed (itself)
      // before it is ready. A ClusterIP over the ready pods for everyone else's clients.
      const svc = selfAddressed ? { clusterIP: "None", publishNotReadyAddresses: true } : { type: "ClusterIP" };
      new k8s.core.v1.Service(
        `${name}-svc`,
        { metadata, spec: { ...svc, selector: labels, ports } },
        { parent, provider: this.provider },
      );
      if (selfAddressed) this.headless.add(spec.name);
      else if (service.metrics) {
        // Prometheus scrapes each replica, not whichever one the ClusterIP picks.
        const pods = { ...metadata, name: `${spec.name}-pods` };
        new k8s.core.v1.Service(
          `${name}-pods`,
          { metadata: pods, spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: labels, ports } },
          { parent, provider: this.provider },
        );
      }
    }

    const folders = (spec.imageFolders ?? []).map((f, i) => copyFolder(f, `folder-${i}`));
    const hostPaths = (spec.hostPaths ?? []).map((h, i) => ({ ...h, volume: `host-${i}` }));
    const mem = `${memoryMiB(spec.memory)}Mi`;
    const container: k8s.types.input.core.v1.Container = {
      name: spec.name,
      image: spec.image,
      // The image's entrypoint stays; the process's arguments replace its CMD, as written (literalArg).
      args: spec.args?.map((a) => pulumi.output(a).apply(literalArg)),
      env: [
        ...Object.entries(spec.env).map(([k, value]) => ({ name: k, value })),
        ...secretKeys.map((k) => ({ name: k, valueFrom: { secretKeyRef: { name: secret!.metadata.name, key: k } } })),
      ],
      ports: ports.map((p) => ({ name: p.name, containerPort: p.port })),
      resources: {
        requests: { memory: mem, ...(spec.cpu === undefined ? {} : { cpu: spec.cpu }) },
        limits: { memory: mem },
      },
      volumeMounts: [
        ...(spec.volumes ?? []).map((v) => ({ name: v.volume, mountPath: v.path })),
        ...files.map((f, i) => ({ name: "files", mountPath: f.path, subPath: `f${i}` })),
        ...folders.map((f) => ({ name: f.volume, mountPath: f.path, readOnly: true })),
        ...hostPaths.map((h) => ({ name: h.volume, mountPath: h.path, readOnly: true })),
      ],
      ...probes,
      securityContext: spec.user === undefined ? NO_ESCALATION : nonRoot(spec.user),
      ...(service.stop?.command ? { lifecycle: { preStop: { exec: { command: service.stop.command } } } } : {}),
    };
    // A cluster's members have their own volumes (the StatefulSet's claim templates); others share the target's claims.
    const perMember = spec.cluster !== undefined && (spec.replicas ?? 1) > 1;
    const volumes = [
      ...(perMember
        ? []
        : (spec.volumes ?? []).map((v) => ({
            name: v.volume,
            persistentVolumeClaim: { claimName: this.claim(v.volume, v.shared ?? false).metadata.name },
          }))),
      ...(configMap
        ? [{ name: "files", configMap: { name: configMap.metadata.name, defaultMode: this.fileMode(files) } }]
        : []),
      ...folders.map((f) => ({ name: f.volume, emptyDir: {} })),
      // Directory: the node's folder must exist; the kubelet never creates one on the host.
      ...hostPaths.map((h) => ({ name: h.volume, hostPath: { path: h.host, type: "Directory" } })),
    ];
    // fsGroup makes most volumes writable for the image's group, but the kubelet applies it to no
    // hostPath or local volume (what many on-premises classes give): the group is set once, as root.
    const dataMounts = (spec.volumes ?? []).map((v) => ({ name: v.volume, mountPath: v.path }));
    const volumeOwner: k8s.types.input.core.v1.Container | undefined =
      spec.volumeGroup === undefined || dataMounts.length === 0
        ? undefined
        : {
            name: "volume-group",
            image: spec.image,
            command: [
              "sh",
              "-c",
              literalArg(
                volumeGroupScript(
                  spec.volumeGroup,
                  dataMounts.map((m) => m.mountPath),
                ),
              ),
            ],
            securityContext: { ...NO_ESCALATION, runAsUser: 0 },
            resources: { requests: { memory: "32Mi" }, limits: { memory: "64Mi" } },
            volumeMounts: dataMounts,
          };
    // No service links: a Service named kafka would put KAFKA_PORT=tcp://... into every pod, which
    // Confluent images read as their own (deprecated) setting and refuse to start.
    const podSpec: k8s.types.input.core.v1.PodSpec = {
      enableServiceLinks: false,
      ...(service.stop ? { terminationGracePeriodSeconds: service.stop.graceSeconds } : {}),
      ...(Object.keys(this.args.nodeSelector).length > 0 ? { nodeSelector: this.args.nodeSelector } : {}),
      ...(volumeOwner || folders.length > 0
        ? { initContainers: [...(volumeOwner ? [volumeOwner] : []), ...folders.map((f) => f.copy)] }
        : {}),
      containers: [container],
      volumes,
      ...(this.args.imagePullSecrets.length > 0
        ? { imagePullSecrets: this.args.imagePullSecrets.map((name) => ({ name })) }
        : {}),
      // No pod talks to the Kubernetes API: none gets a service-account token. Every pod runs under
      // the container runtime's default seccomp profile (the Pod Security "restricted" level's).
      automountServiceAccountToken: false,
      securityContext: {
        seccompProfile: { type: "RuntimeDefault" },
        ...(spec.volumeGroup === undefined ? {} : { fsGroup: spec.volumeGroup }),
      },
    };
    return {
      name,
      metadata,
      labels,
      spec: podSpec,
      opts: { parent, provider: this.provider, dependsOn: dependencyResources(spec) },
    };
  }

  /** The target owns its claims: one per logical volume, whichever service asks first. */
  private claim(volume: string, shared: boolean): k8s.core.v1.PersistentVolumeClaim {
    let c = this.claims.get(volume);
    if (!c) {
      c = new k8s.core.v1.PersistentVolumeClaim(
        `${this.ownName}-${volume}`,
        {
          metadata: { name: volume, namespace: this.namespace.metadata.name },
          spec: {
            accessModes: [shared ? "ReadWriteMany" : "ReadWriteOnce"],
            storageClassName: shared
              ? (this.args.sharedStorageClass ?? this.args.storageClass)
              : this.args.storageClass,
            resources: { requests: { storage: this.claimSize(volume) } },
          },
        },
        { parent: this, provider: this.provider, protect: this.args.protectData },
      );
      this.claims.set(volume, c);
    }
    return c;
  }

  private claimSize(volume: string): string {
    const size = this.args.claimSizes[volume];
    if (size === undefined)
      throw new Error(`${volume}: no claim size (the stage config's claimSizes lists every volume)`);
    return size;
  }

  private fileMode(files: FileSpec[]): number {
    return files.some((f) => f.executable) ? 0o755 : 0o644;
  }
}

/** An image folder: an emptyDir that an init container from that image fills before the process starts. */
function copyFolder(
  f: ImageFolder,
  volume: string,
): { volume: string; path: string; copy: k8s.types.input.core.v1.Container } {
  const into = "/into";
  return {
    volume,
    path: f.path,
    copy: {
      name: `copy-${volume}`,
      image: f.image,
      command: ["cp", "-R", `${f.from}/.`, `${into}/`],
      // reads the image's files, writes an emptyDir (open to all): any uid will do
      securityContext: nonRoot(NOBODY),
      resources: { requests: { memory: "32Mi" }, limits: { memory: "64Mi" } },
      volumeMounts: [{ name: volume, mountPath: into }],
    },
  };
}
