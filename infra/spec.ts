/**
 * The target seam: what a service *is*, in neutral words (the way pulumi-eks and pulumi-awsx read):
 * a long-running service that is stateful or stateless, with replicas and a health check, or a job
 * that runs once to completion; the image, the process's arguments, env in the image's own words,
 * ports, volumes, dependencies, memory. A subsystem component builds specs; a Target decides how
 * they run (Docker containers, or Kubernetes Deployments, StatefulSets and Jobs) and owns every
 * resource it creates for them (networks, namespaces, volumes, claims). Nothing in here knows a
 * platform: each target translates these words into its own.
 *
 * One meaning per name: a port is a number (`container`, `published`); a DNS name is what a process
 * resolves by on the stack's network (`dnsName`); an address is host:port, on the stack's network
 * (`address`) or from outside it (`outsideAddress`).
 */
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";

/**
 * The repository root. Pulumi.yaml says `main: infra/`, so the engine, the language host and every
 * provider run with infra/ as their working directory: a path handed to a provider must not be
 * relative to it (nor to wherever the user typed `pulumi up`).
 */
export const REPO_ROOT = path.resolve(__dirname, "..");

/** A path inside the repository, made absolute (image contexts, Dockerfiles). */
export function repoPath(p: string): string {
  return path.resolve(REPO_ROOT, p);
}

/** A memory size, "512m" or "2g" (the stage config's notation). */
export const MEMORY = /^([1-9][0-9]*)([mg])$/;
/** A memory size in MiB. */
export function memoryMiB(size: string): number {
  const m = MEMORY.exec(size);
  if (!m) throw new Error(`not a memory size: ${size}`);
  return Number(m[1]) * (m[2] === "g" ? 1024 : 1);
}

/** What one process may use: a memory limit ("512m", "2g") and a CPU request ("250m", "1"). */
export interface Size {
  memory: string;
  cpu: string;
}

export interface PortSpec {
  /** The port the process listens on inside its network. */
  container: number;
  /** The port it is published on outside the stack (Docker: the bind address; Kubernetes: a port-forward). */
  published?: number;
}

/** A command run inside the process's container, and how often and how long: passes when it exits 0. */
export interface HealthCheck {
  /** The program and its arguments (no shell unless the command names one). */
  command: string[];
  intervalSeconds?: number;
  timeoutSeconds?: number;
  retries?: number;
  startPeriodSeconds?: number;
}

/**
 * A check that asks a node process's HTTP endpoint from inside its container (node is in the
 * image, curl is not). Slow timings: starting a node process per check took over 5 s (Docker's
 * usual timeout) on a loaded 2-core host.
 */
export function nodeHttpCheck(port: number, path: string): HealthCheck {
  return {
    command: [
      "node",
      "-e",
      `fetch('http://127.0.0.1:${port}${path}').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))`,
    ],
    intervalSeconds: 15,
    timeoutSeconds: 20,
  };
}

/**
 * A check that asks an HTTP endpoint with wget from inside the container: busybox's in the
 * exporters' and Prometheus's upstream images, Debian's in the stand-ins (images/upstream).
 */
export function wgetCheck(
  port: number,
  path: string,
  timings: Pick<HealthCheck, "intervalSeconds" | "timeoutSeconds"> = { intervalSeconds: 15, timeoutSeconds: 5 },
): HealthCheck {
  return { command: ["wget", "-q", "-O", "/dev/null", `http://127.0.0.1:${port}${path}`], ...timings };
}

export interface VolumeMount {
  /** Logical volume name, unique in the stack; the same name shares one volume. */
  volume: string;
  path: string;
  /** Mounted by several services at once (on a cluster: a ReadWriteMany claim). */
  shared?: boolean;
}

/** A file written into the container before it starts (init scripts); never holds secrets. */
export interface FileSpec {
  path: string;
  content: string;
  executable?: boolean;
}

/**
 * A folder of another image that the process reads (a Java agent and its files): copied out of
 * that image before the process starts and mounted at `path`. The process's own image stays the
 * upstream one.
 */
export interface ImageFolder {
  image: pulumi.Input<string>;
  /** The folder inside `image`. */
  from: string;
  /** Where the process finds the folder's files. */
  path: string;
}

/** A folder of the machine (`host`), seen read-only by the process at `path`. */
export interface HostPath {
  host: string;
  path: string;
}

export type Condition = "healthy" | "completed";

export interface Dependency {
  on: Handle;
  /** healthy: a service passing its health check; completed: a job that exited 0. */
  condition: Condition;
}

/** What every process has, service or job. */
export interface ProcessSpec {
  /** Name on the stack's network; other services dial it. */
  name: string;
  image: pulumi.Input<string>;
  /**
   * The process's arguments, given to the image's entrypoint in place of the image's default
   * arguments (Docker's CMD, Kubernetes' `args`). Absent: the image's own.
   */
  args?: pulumi.Input<string>[];
  env: Record<string, pulumi.Input<string>>;
  /** Env values that carry generated secrets: the target keeps them secret end to end. */
  secretEnv?: Record<string, pulumi.Input<string>>;
  /** Every port the process listens on, keyed by role (published or not). */
  ports: Record<string, PortSpec>;
  volumes?: VolumeMount[];
  /**
   * Group the image's process runs as, when it is not root: fresh cluster volumes are made
   * writable for it (Docker volumes inherit the image directory's owner instead).
   */
  volumeGroup?: number;
  /**
   * The image's own non-root uid, for an image that never needs root: the target pins it and takes
   * every other privilege away (Kubernetes: runAsNonRoot, runAsUser, all capabilities dropped).
   */
  user?: number;
  files?: FileSpec[];
  imageFolders?: ImageFolder[];
  /**
   * Folders of the machine the process runs on, read-only (a node-level agent reading the host's
   * filesystems); for node-level agents only: nothing else should depend on which machine it is.
   */
  hostPaths?: HostPath[];
  dependsOn?: Dependency[];
  /** Limit, "512m" / "2g". */
  memory: string;
  /** CPU request ("250m", "1"): a cluster's scheduler reserves it; a single host ignores it. */
  cpu?: string;
}

/**
 * The members of a replicated stateful service form one cluster (a ZooKeeper ensemble, Kafka
 * brokers, a Cassandra ring). Member i (0-based) is `<name>-<i>`: its process finds its own i at
 * the end of $HOSTNAME, and dials the others at Target.memberDnsName(name, i). At most one member
 * is down by decision at a time (drains, rolling updates), and the members are spread over
 * machines.
 */
export interface ClusterSpec {
  /**
   * together: all members start at once (each is ready only with the others: a quorum);
   * one-by-one: each starts once the one before is ready (Cassandra bootstraps one node at a time).
   */
  start: "together" | "one-by-one";
}

/** Runs forever, restarts when it dies, is ready when its health check passes. */
export interface ServiceSpec extends ProcessSpec {
  /**
   * stateful: keeps data on volumes of its own and needs a stable identity (a StatefulSet on a
   * cluster; with several replicas, each has its own volumes and `cluster` says how they behave).
   * stateless: replicas are interchangeable and may only mount shared volumes (a Deployment on a
   * cluster).
   */
  state: "stateful" | "stateless";
  /** Default 1; a stateful service with more is a cluster and needs `cluster`. */
  replicas?: number;
  /**
   * One copy on each machine of the target (a node-level agent): stateless, no replicas setting
   * beyond 1, no volumes of its own. The copies are scraped one by one like replicas.
   */
  everyMachine?: boolean;
  cluster?: ClusterSpec;
  /** Ready to serve: what clients and dependents wait for (in a cluster: in the quorum, in sync). */
  healthCheck: HealthCheck;
  /**
   * The process itself is alive, whatever its peers do: a target restarts the service when it
   * fails (after its start budget). Absent: only when the process exits. Never "in the cluster":
   * losing two of three members must not restart the third.
   */
  aliveCheck?: HealthCheck;
  /**
   * At most one copy runs at any time, during a change too (the relay's outbox claims, a Spark
   * driver's checkpoint): the old one has stopped before the new one starts.
   */
  exclusive?: boolean;
  /**
   * Peers dial this process's own address, on ports that are not all declared (a Spark driver and
   * master bind and advertise their own name): the name resolves to the process, not to a
   * load-balanced address. Stateful services always are.
   */
  selfAddressed?: boolean;
  /** How it stops: a command run first (a Cassandra drain), then SIGTERM and graceSeconds to exit. */
  stop?: StopSpec;
  /** Prometheus scrapes every replica on this port role (path /metrics unless given). */
  metrics?: { port: string; path?: string };
}

export interface StopSpec {
  /** Run inside the container before the signal; the grace period covers it. */
  command?: string[];
  /** From the stop request until the process is killed. */
  graceSeconds: number;
}

/** Runs once to completion (migrations, users, topics); done when it exits 0, failed otherwise. */
export type JobSpec = ProcessSpec;

/** What a target gives back for a declared service or job: its addresses and the resource to depend on. */
export interface Handle {
  name: string;
  kind: "service" | "job";
  /** The name it resolves by on the stack's network (Target.dnsName of its name). */
  dnsName: string;
  ports: Record<string, PortSpec>;
  resource: pulumi.Resource;
  /** Every resource it is made of, when a target runs replicas as several (Docker containers); else [resource]. */
  resources: pulumi.Resource[];
  /** host:port of a port role from anywhere on the stack's network (and other stacks joined to it). */
  address(port: string): string;
  /** host:port of a published port role from outside the stack; undefined when it is not published. */
  outsideAddress(port: string): string | undefined;
  /**
   * Where Prometheus finds every replica's metrics (ServiceSpec.metrics): a name resolving to each, the port, the path.
   */
  metrics?: ScrapePoint;
}

/**
 * Where Prometheus finds every replica: fixed host names (a stopped one fails its scrape: up 0), or
 * a DNS name whose A records are each replica's address, not-ready ones included (replicas come and
 * go: Prometheus's DNS discovery).
 */
export type ScrapeAddresses = { hosts: string[] } | { dnsName: string };
export type ScrapePoint = ScrapeAddresses & { port: number; path: string };

export type ServiceHandle = Handle & { kind: "service" };
export type JobHandle = Handle & { kind: "job" };

export interface ImageSpec {
  /** Short name; the target derives the repository from the stack prefix. */
  name: string;
  /** Build context and Dockerfile, relative to the repository root (the target makes them absolute). */
  context: string;
  dockerfile: string;
  tag: string;
  /** Build args; an image of another spec may be one (the build then waits for it). */
  args?: Record<string, pulumi.Input<string>>;
}

/** Where a stack's internal addresses resolve, in the target's own word for it (`kind`) and its name. */
export interface StackNetwork {
  kind: string;
  name: string;
}

/**
 * Who declares a process or an image: the component it belongs to (`parent`) and the name its
 * children's names derive from (`<name>-<process>`), as pulumi-eks and pulumi-awsx name theirs.
 */
export interface Owner {
  parent: pulumi.Resource;
  name: string;
}

/** Env in two halves, plain and secret, grouped by what a process talks to. */
export interface EnvGroup {
  env: Record<string, pulumi.Input<string>>;
  secret: Record<string, pulumi.Input<string>>;
}

/** Merges groups into a spec's env and secretEnv. */
export function merge(...groups: EnvGroup[]): Required<Pick<ProcessSpec, "env" | "secretEnv">> {
  return {
    env: Object.assign({}, ...groups.map((g) => g.env)),
    secretEnv: Object.assign({}, ...groups.map((g) => g.secret)),
  };
}

/** How a platform runs specs. One implementation per target, chosen by the stage config. */
export interface Target {
  /** Stack-wide prefix every physical name derives from. */
  readonly prefix: string;
  readonly network: StackNetwork;
  /** Declares one long-running service, as a child of its owner. */
  service(spec: ServiceSpec, owner: Owner): ServiceHandle;
  /** Declares one run-to-completion job, as a child of its owner. */
  job(spec: JobSpec, owner: Owner): JobHandle;
  /** Builds one of the project's images; resolves to a pinned reference. */
  image(spec: ImageSpec, owner: Owner): pulumi.Output<string>;
  /**
   * The name `service` resolves by on the stack's network, before it is declared (a broker
   * advertises its own address, a seed names itself). Handles' `address` uses the same.
   */
  dnsName(service: string): string;
  /** The name member i (0-based) of a clustered service resolves by (a broker's own listener, a seed). */
  memberDnsName(service: string, ordinal: number): string;
  /** host:port of a published port, as clients outside the stack dial it. */
  outsideAddress(publishedPort: number): string;
  /** Where Prometheus finds each of the `replicas` of `service` (not one balanced address). */
  scrapeAddresses(service: string, replicas: number): ScrapeAddresses;
}

/** The resources a process must start after; a condition must match what the dependency is. */
export function dependencyResources(spec: ProcessSpec): pulumi.Resource[] {
  return (spec.dependsOn ?? [])
    .map((d) => {
      const expected = d.condition === "completed" ? "job" : "service";
      if (d.on.kind !== expected) {
        throw new Error(`${spec.name} waits for ${d.on.name} to be ${d.condition}, but ${d.on.name} is a ${d.on.kind}`);
      }
      return d.on.resources;
    })
    .flat();
}

/** The rules every target applies to a service spec before declaring it. */
export function checkService(spec: ServiceSpec): number {
  const replicas = spec.replicas ?? 1;
  if (!Number.isInteger(replicas) || replicas < 1)
    throw new Error(`${spec.name}: replicas must be an integer >= 1, not ${replicas}`);
  if (spec.everyMachine) checkEveryMachine(spec, replicas);
  if (spec.state === "stateful" && replicas !== 1 && spec.cluster === undefined)
    throw new Error(
      `${spec.name}: a stateful service with ${replicas} replicas is a cluster: say how its members start (cluster)`,
    );
  if (spec.state === "stateless") {
    const own = (spec.volumes ?? []).filter((v) => !v.shared).map((v) => v.volume);
    if (own.length > 0)
      throw new Error(
        `${spec.name}: a stateless service may mount only shared volumes, but mounts ${own.join(", ")}; make it stateful or the volume shared`,
      );
  }
  return replicas;
}

/** A copy per machine: the machines set the count, and nothing of its own to keep on any of them. */
function checkEveryMachine(spec: ServiceSpec, replicas: number): void {
  const own = (spec.volumes ?? []).filter((v) => !v.shared).map((v) => v.volume);
  if (spec.state !== "stateless")
    throw new Error(`${spec.name}: an everyMachine service is stateless, not ${spec.state}`);
  if (replicas > 1) {
    throw new Error(`${spec.name}: an everyMachine service runs one copy per machine; drop replicas (${replicas})`);
  }
  if (own.length > 0) {
    throw new Error(
      `${spec.name}: an everyMachine service has no volumes of its own, but mounts ${own.join(", ")} (volumes)`,
    );
  }
}

/** Builds a handle from the target's address rules. */
export function makeHandle<K extends Handle["kind"]>(
  kind: K,
  spec: ProcessSpec,
  resource: pulumi.Resource,
  target: Pick<Target, "dnsName" | "outsideAddress" | "scrapeAddresses">,
  resources: pulumi.Resource[] = [resource],
): Handle & { kind: K } {
  const port = (role: string) => {
    const p = spec.ports[role];
    if (!p) throw new Error(`${spec.name} has no port ${role}`);
    return p;
  };
  const m = (spec as Partial<ServiceSpec>).metrics;
  return {
    name: spec.name,
    kind,
    dnsName: target.dnsName(spec.name),
    ports: spec.ports,
    resource,
    resources,
    address: (role) => `${target.dnsName(spec.name)}:${port(role).container}`,
    outsideAddress: (role) => {
      const p = port(role).published;
      return p === undefined ? undefined : target.outsideAddress(p);
    },
    ...(m
      ? {
          metrics: {
            ...target.scrapeAddresses(spec.name, (spec as Partial<ServiceSpec>).replicas ?? 1),
            port: port(m.port).container,
            path: m.path ?? "/metrics",
          },
        }
      : {}),
  };
}

/** host:port of every member of a clustered service (one entry when it has one replica), comma-separated. */
export function memberAddresses(
  target: Pick<Target, "dnsName" | "memberDnsName">,
  service: string,
  replicas: number,
  port: number,
): string {
  if (replicas === 1) return `${target.dnsName(service)}:${port}`;
  return Array.from({ length: replicas }, (_, i) => `${target.memberDnsName(service, i)}:${port}`).join(",");
}

/**
 * bash that exports member i's own settings, i read from the end of $HOSTNAME (ClusterSpec): a
 * member that finds no entry for itself stops, rather than join the cluster as someone else.
 * Values are single-quoted: no expansion inside them.
 */
export function perMemberExports(replicas: number, env: (ordinal: number) => Record<string, string>): string {
  const arms = Array.from({ length: replicas }, (_, i) => {
    const exports = Object.entries(env(i)).map(([k, v]) => {
      if (!/^[A-Z_][A-Z0-9_]*$/.test(k) || v.includes("'"))
        throw new Error(`perMemberExports: ${k} is not a plain variable and value`);
      return `export ${k}='${v}'`;
    });
    return `${i}) ${exports.join("; ")};;`;
  });
  return `case "\${HOSTNAME##*-}" in ${arms.join(" ")} *) echo "$HOSTNAME: not member 0..${replicas - 1} of this cluster" >&2; exit 1;; esac`;
}
