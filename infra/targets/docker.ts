/**
 * The Docker target: specs become containers on one private network, with named volumes,
 * health checks, restart policies and memory limits. Start order is by health: a service is
 * created with `wait` (the provider returns once its health check passes); a job's container is
 * created stopped and run by a JobRun (docker-job.ts), which fails the deploy when it exits
 * non-zero; so `dependsOn` on either means "after it is healthy" or "after it completed".
 * Containers take the image by its ID (the provider's repoDigest of a local build), so a rebuilt
 * image rolls exactly the containers that run it.
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { JobRun } from "./docker-job";
import {
  HealthCheck,
  ImageFolder,
  ImageSpec,
  JobHandle,
  JobSpec,
  Owner,
  ProcessSpec,
  ScrapeAddresses,
  ServiceHandle,
  ServiceSpec,
  StackNetwork,
  Target,
  checkService,
  dependencyResources,
  makeHandle,
  memoryMiB,
  repoPath,
} from "../spec";

export interface DockerTargetArgs {
  prefix: string;
  /** Host address published ports bind to (127.0.0.1 keeps them off the LAN). */
  bindAddress: string;
  /** The name clients outside dial when bindAddress is 0.0.0.0 (validation requires it then). */
  advertisedHost?: string;
  /** Services whose replicas are containers <name>-1..N even when there is one (the names they always had). */
  numbered?: string[];
}

/** What the output contract calls the place a Docker stack's addresses resolve. */
export const DOCKER_NETWORK = "docker-network";
/** Label keys that document a container's listening ports; Docker has no other place for them. */
export const PORT_LABEL = "realtime-pipeline.port.";
/** The least time `up` waits for a service to turn healthy. */
const WAIT_FLOOR_SECONDS = 600;

/** Image folders copied into volumes: what the process mounts, and the copies it starts after. */
interface CopiedFolders {
  mounts: docker.types.input.ContainerVolume[];
  after: pulumi.Resource[];
}
const NO_FOLDERS: CopiedFolders = { mounts: [], after: [] };
/** Where a copy job sees the volume it fills. */
const COPY_INTO = "/into";

/** A volume name from a folder's path: /opt/jmx-agent -> jmx-agent. */
export function folderName(path: string): string {
  const base = path.replace(/\/+$/, "").split("/").pop() ?? "";
  if (!/^[a-z0-9][a-z0-9-]*$/.test(base))
    throw new Error(`image folder ${path}: its last part names a volume, so lowercase letters, digits and - only`);
  return base;
}

const shellQuote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;

/** A health check as Docker takes it: exec form, its durations as the engine reads them back. */
function healthcheck(hc: HealthCheck): docker.types.input.ContainerHealthcheck {
  return {
    tests: ["CMD", ...hc.command],
    interval: goDuration(hc.intervalSeconds ?? 10),
    timeout: goDuration(hc.timeoutSeconds ?? 5),
    retries: hc.retries ?? 10,
    startPeriod: goDuration(hc.startPeriodSeconds ?? 20),
  };
}

/**
 * Seconds as Go's time.Duration prints them ("20s", "1m0s", "1h2m5s"): the provider reads a
 * container's health check back in that form, so "60s" read back as "1m0s" and every `up`
 * "updated" the four containers with a 60 s start period (seen on the second up of dev-up).
 */
export function goDuration(seconds: number): string {
  if (!Number.isInteger(seconds) || seconds < 0)
    throw new Error(`health check durations are whole seconds ≥ 0, got ${seconds}`);
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** The host's folders a node-level agent reads: bind mounts, read-only (absent when none: no diff elsewhere). */
function hostMounts(spec: ProcessSpec): Pick<docker.ContainerArgs, "mounts"> {
  const binds = (spec.hostPaths ?? []).map((h) => ({ type: "bind", source: h.host, target: h.path, readOnly: true }));
  return binds.length > 0 ? { mounts: binds } : {};
}

export class DockerTarget extends pulumi.ComponentResource implements Target {
  readonly prefix: string;
  readonly network: StackNetwork;
  readonly dockerNetwork: docker.Network;
  private readonly volumes = new Map<string, docker.Volume>();
  private readonly bindAddress: string;
  private readonly advertisedHost?: string;
  private readonly numbered: string[];
  private readonly ownName: string;

  /** Its own children (network, volumes) are named from `name`; the engine's objects from `prefix`. */
  constructor(name: string, args: DockerTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:docker:Target", name, {}, opts);
    this.ownName = name;
    this.prefix = args.prefix;
    this.bindAddress = args.bindAddress;
    this.advertisedHost = args.advertisedHost;
    this.numbered = args.numbered ?? [];
    const networkName = `${args.prefix}-net`;
    this.dockerNetwork = new docker.Network(`${name}-net`, { name: networkName, driver: "bridge" }, { parent: this });
    this.network = { kind: DOCKER_NETWORK, name: networkName };
    this.registerOutputs({ networkName: this.dockerNetwork.name });
  }

  /** The network alias: containers joined to the stack's network resolve it. */
  dnsName(service: string): string {
    return service;
  }

  outsideAddress(publishedPort: number): string {
    // Every interface: clients elsewhere dial the host's own name (localhost would be themselves).
    const host = this.bindAddress === "0.0.0.0" ? (this.advertisedHost ?? "localhost") : this.bindAddress;
    return `${host}:${publishedPort}`;
  }

  /** Each container by its own name (<name>, or <name>-1..N): a stopped one fails its scrape, up 0. */
  scrapeAddresses(service: string, replicas: number): ScrapeAddresses {
    const one = replicas === 1 && !this.numbered.includes(service);
    return { hosts: one ? [service] : Array.from({ length: replicas }, (_, i) => `${service}-${i + 1}`) };
  }

  /** Never dialled: a clustered service has one member on one host (the stage config says so first). */
  memberDnsName(service: string, ordinal: number): string {
    return `${service}-${ordinal}`;
  }

  service(spec: ServiceSpec, owner: Owner): ServiceHandle {
    const replicas = checkService(spec);
    if (spec.state === "stateful" && replicas !== 1)
      throw new Error(`${spec.name}: the docker target runs one member of a cluster (one host), not ${replicas}`);
    // Interchangeable replicas: one container each, <name>-1..N (the names the dev stack always
    // gave its Spark workers). Nothing dials such a service by its own name.
    const one = replicas === 1 && !this.numbered.includes(spec.name);
    const folders = this.copyFolders(spec, owner);
    const members = one
      ? [spec]
      : Array.from({ length: replicas }, (_, i) => ({ ...spec, name: `${spec.name}-${i + 1}` }));
    const containers = members.map((m) => this.serviceContainer(m, owner, folders));
    return makeHandle("service", spec, containers[0], this, containers);
  }

  private serviceContainer(spec: ServiceSpec, owner: Owner, folders: CopiedFolders): docker.Container {
    const hc = spec.healthCheck;
    return this.container(spec, "service", owner, folders, {
      healthcheck: healthcheck(hc),
      // Services come back after a crash or a host reboot.
      restart: "unless-stopped",
      // A broker's controlled shutdown, a Cassandra node's flush: time before Docker's SIGKILL.
      ...(spec.stop ? { stopTimeout: spec.stop.graceSeconds } : {}),
      wait: true,
      // The provider polls until the check passes (an "unhealthy" on the way is no failure),
      // so wait at least as long as Docker keeps trying, and 10 minutes: a fixed 300 s gave up on
      // a Cassandra, a Kafka and Spark workers that were still starting on a loaded 2-core host.
      waitTimeout: Math.max(
        WAIT_FLOOR_SECONDS,
        (hc.startPeriodSeconds ?? 20) + (hc.retries ?? 10) * ((hc.intervalSeconds ?? 10) + (hc.timeoutSeconds ?? 5)),
      ),
      mustRun: true,
    });
  }

  job(spec: JobSpec, owner: Owner): JobHandle {
    return makeHandle("job", spec, this.jobRun(spec, owner, this.copyFolders(spec, owner)), this);
  }

  private jobRun(spec: JobSpec, owner: Owner, folders: CopiedFolders, entrypoint?: string[]): JobRun {
    const container = this.container(spec, "job", owner, folders, {
      // Created, not started: the JobRun starts it and fails the deploy if it exits non-zero.
      // A job that failed is a deploy error, not something to restart.
      start: false,
      restart: "no",
      mustRun: false,
      ...(entrypoint ? { entrypoints: entrypoint } : {}),
    });
    const inputs = { name: container.name, containerId: container.id };
    return new JobRun(`${owner.name}-${spec.name}-run`, inputs, { parent: owner.parent });
  }

  /**
   * Docker has no init containers: each image folder is copied into a volume of its own by a job
   * run from that image, and the process mounts the volume and starts after the copy.
   */
  private copyFolders(spec: ProcessSpec, owner: Owner): CopiedFolders {
    const copied = (spec.imageFolders ?? []).map((f: ImageFolder) => {
      const name = `${spec.name}-${folderName(f.path)}`;
      const copy: JobSpec = {
        name: `copy-${name}`,
        image: f.image,
        env: {},
        ports: {},
        volumes: [{ volume: name, path: COPY_INTO }],
        memory: "64m",
      };
      const run = this.jobRun(copy, owner, NO_FOLDERS, [
        "sh",
        "-c",
        `cp -R ${shellQuote(`${f.from}/.`)} ${COPY_INTO}/`,
      ]);
      return { mount: { volumeName: this.volume(name).name, containerPath: f.path, readOnly: true }, run };
    });
    return { mounts: copied.map((c) => c.mount), after: copied.map((c) => c.run) };
  }

  image(spec: ImageSpec, owner: Owner): pulumi.Output<string> {
    const image = new docker.Image(
      `${owner.name}-${spec.name}-image`,
      {
        imageName: `${this.prefix}/${spec.name}:${spec.tag}`,
        // The classic builder: Docker engines without BuildKit (Debian's docker.io 20.10) build
        // the same Dockerfiles, and the engine's own image store resolves FROM <image ID>.
        build: {
          context: repoPath(spec.context),
          dockerfile: repoPath(spec.dockerfile),
          args: spec.args,
          builderVersion: "BuilderV1",
        },
        // Built for the local engine only; a registry comes with the Kubernetes target.
        skipPush: true,
      },
      { parent: owner.parent },
    );
    // For a local image, repoDigest is its ID (sha256:…): it changes with every rebuild that
    // changes the image, where the tag does not, so containers roll when (and only when) it does.
    return image.repoDigest;
  }

  private container(
    spec: ProcessSpec,
    kind: "service" | "job",
    owner: Owner,
    folders: CopiedFolders,
    lifecycle: Partial<docker.ContainerArgs>,
  ): docker.Container {
    const name = `${this.prefix}-${spec.name}`;
    return new docker.Container(
      `${owner.name}-${spec.name}`,
      {
        name,
        hostname: spec.name,
        image: spec.image,
        // Docker's `command` is the image's CMD: the arguments its entrypoint gets.
        command: spec.args,
        envs: this.envs(spec),
        networksAdvanced: [{ name: this.dockerNetwork.name, aliases: [spec.name] }],
        ports: Object.values(spec.ports)
          .filter((p) => p.published !== undefined)
          .map((p) => ({ internal: p.container, external: p.published, ip: this.bindAddress })),
        labels: [
          { label: "realtime-pipeline.kind", value: kind },
          ...Object.entries(spec.ports).map(([role, p]) => ({
            label: `${PORT_LABEL}${role}`,
            value: String(p.container),
          })),
        ],
        volumes: [
          ...(spec.volumes ?? []).map((v) => ({ volumeName: this.volume(v.volume).name, containerPath: v.path })),
          ...folders.mounts,
        ],
        ...hostMounts(spec),
        uploads: (spec.files ?? []).map((f) => ({
          file: f.path,
          content: f.content,
          executable: f.executable ?? false,
        })),
        memory: memoryMiB(spec.memory),
        // Memory plus swap = the limit: no swap past it. Left unset, Docker reads back twice the
        // limit and the next `up` "updated" every container once.
        memorySwap: memoryMiB(spec.memory),
        ...lifecycle,
      },
      { parent: owner.parent, dependsOn: [...dependencyResources(spec), ...folders.after] },
    );
  }

  /** KEY=value strings; the whole list turns secret when one value is (Docker takes one list). */
  private envs(spec: ProcessSpec): pulumi.Output<string[]> {
    const line = ([k, v]: [string, pulumi.Input<string>]) => pulumi.interpolate`${k}=${v}`;
    const plain = Object.entries(spec.env).map(line);
    const secret = Object.entries(spec.secretEnv ?? {}).map(line);
    const all = pulumi.all([...plain, ...secret]);
    return secret.length > 0 ? pulumi.secret(all) : all;
  }

  /** The target owns its volumes: one per logical name, whichever service asks first. */
  private volume(logical: string): docker.Volume {
    let v = this.volumes.get(logical);
    if (!v) {
      v = new docker.Volume(`${this.ownName}-${logical}`, { name: `${this.prefix}-${logical}` }, { parent: this });
      this.volumes.set(logical, v);
    }
    return v;
  }
}
