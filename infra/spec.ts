/**
 * The target seam: what a service *is*, as plain data (image, env in the image's own words,
 * ports, health check, volumes, dependencies, limits). A subsystem component builds specs; a
 * Target decides how they run (Docker containers today; StatefulSets later). Nothing in here
 * knows about Docker.
 */
import * as pulumi from "@pulumi/pulumi";

export interface PortSpec {
  /** The port the process listens on inside its network. */
  container: number;
  /** Published on the host (bound to the configured address) only when set. */
  host?: number;
}

export interface HealthCheck {
  /** Exec form (["CMD", ...]) or shell form (["CMD-SHELL", "..."]), as Docker and probes take it. */
  test: string[];
  intervalSeconds?: number;
  timeoutSeconds?: number;
  retries?: number;
  startPeriodSeconds?: number;
}

export interface VolumeMount {
  /** Logical volume name, unique in the stack; the same name shares one volume. */
  volume: string;
  path: string;
  /** Mounted by several services at once (a cluster needs a ReadWriteMany claim for it). */
  shared?: boolean;
}

/** A file written into the container before it starts (init scripts); never holds secrets. */
export interface FileSpec {
  path: string;
  content: string;
  executable?: boolean;
}

export type Condition = "healthy" | "completed";

export interface Dependency {
  on: ServiceHandle;
  /** healthy: a long-running service passing its health check; completed: a job that exited. */
  condition: Condition;
}

export interface ServiceSpec {
  /** Hostname on the private network; other services dial it. */
  name: string;
  /** service: runs forever and restarts; job: runs once to completion (migrations, users, topics). */
  kind: "service" | "job";
  image: pulumi.Input<string>;
  command?: pulumi.Input<string>[];
  env: Record<string, pulumi.Input<string>>;
  /** Env values that carry generated secrets: the target keeps them secret end to end. */
  secretEnv?: Record<string, pulumi.Input<string>>;
  /** Every port the service listens on, keyed by role (published or not). */
  ports: Record<string, PortSpec>;
  healthCheck: HealthCheck;
  volumes?: VolumeMount[];
  /**
   * Group the image's process runs as, when it is not root: fresh cluster volumes are made
   * writable for it (Docker volumes inherit the image directory's owner instead).
   */
  volumeGroup?: number;
  files?: FileSpec[];
  dependsOn?: Dependency[];
  /** Limit, "512m" / "2g". */
  memory: string;
}

/** What a target gives back for a declared service: its address and the resource to depend on. */
export interface ServiceHandle {
  name: string;
  kind: ServiceSpec["kind"];
  ports: Record<string, PortSpec>;
  resource: pulumi.Resource;
}

export interface ImageSpec {
  /** Short name; the target derives the repository from the stack prefix. */
  name: string;
  context: string;
  dockerfile: string;
  tag: string;
  /** Build args; an image of another spec may be one (the build then waits for it). */
  args?: Record<string, pulumi.Input<string>>;
}

/** How a platform runs specs. One implementation per target, chosen by the stage config. */
export interface Target {
  /** Stack-wide prefix every physical name derives from. */
  readonly prefix: string;
  /** Declares one service or job, parented to the calling component. */
  service(spec: ServiceSpec, parent: pulumi.Resource): ServiceHandle;
  /** Builds one of the project's images; resolves to a pinned reference. */
  image(spec: ImageSpec, parent: pulumi.Resource): pulumi.Output<string>;
}

/** The resources a spec must start after; a condition must match what the dependency is. */
export function dependencyResources(spec: ServiceSpec): pulumi.Resource[] {
  return (spec.dependsOn ?? []).map((d) => {
    const expected = d.condition === "completed" ? "job" : "service";
    if (d.on.kind !== expected) {
      throw new Error(`${spec.name} waits for ${d.on.name} to be ${d.condition}, but ${d.on.name} is a ${d.on.kind}`);
    }
    return d.on.resource;
  });
}

/** host:port of a handle's port inside the network. */
export function address(h: ServiceHandle, port: string): string {
  const p = h.ports[port];
  if (!p) throw new Error(`${h.name} has no port ${port}`);
  return `${h.name}:${p.container}`;
}
