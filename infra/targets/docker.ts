/**
 * The Docker target: specs become containers on one private network, with named volumes,
 * health checks, restart policies and memory limits. Start order is by health: a service is
 * created with `wait` (the provider returns once its health check passes) and a job with
 * `attach` (the provider returns once it exited), so `dependsOn` on either means
 * "after it is healthy" or "after it completed".
 */
import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { memoryMiB } from "../config";
import { ImageSpec, ServiceHandle, ServiceSpec, Target, dependencyResources } from "../spec";

export interface DockerTargetArgs {
  prefix: string;
  /** Host address published ports bind to (127.0.0.1 keeps them off the LAN). */
  bindAddress: string;
}

/** Label keys that document a container's listening ports; Docker has no other place for them. */
export const PORT_LABEL = "realtime-pipeline.port.";

export class DockerTarget extends pulumi.ComponentResource implements Target {
  readonly prefix: string;
  readonly network: docker.Network;
  private readonly volumes = new Map<string, docker.Volume>();
  private readonly bindAddress: string;

  constructor(name: string, args: DockerTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:docker:Target", name, {}, opts);
    this.prefix = args.prefix;
    this.bindAddress = args.bindAddress;
    this.network = new docker.Network(`${args.prefix}-net`, { name: `${args.prefix}-net`, driver: "bridge" }, { parent: this });
    this.registerOutputs({ networkName: this.network.name });
  }

  service(spec: ServiceSpec, parent: pulumi.Resource): ServiceHandle {
    const name = `${this.prefix}-${spec.name}`;
    const hc = spec.healthCheck;
    const isJob = spec.kind === "job";
    const container = new docker.Container(
      name,
      {
        name,
        hostname: spec.name,
        image: spec.image,
        command: spec.command,
        envs: this.envs(spec),
        networksAdvanced: [{ name: this.network.name, aliases: [spec.name] }],
        ports: Object.values(spec.ports)
          .filter((p) => p.host !== undefined)
          .map((p) => ({ internal: p.container, external: p.host, ip: this.bindAddress })),
        labels: [
          { label: "realtime-pipeline.kind", value: spec.kind },
          ...Object.entries(spec.ports).map(([role, p]) => ({ label: `${PORT_LABEL}${role}`, value: String(p.container) })),
        ],
        volumes: (spec.volumes ?? []).map((v) => ({ volumeName: this.volume(v.volume, parent).name, containerPath: v.path })),
        uploads: (spec.files ?? []).map((f) => ({ file: f.path, content: f.content, executable: f.executable ?? false })),
        healthcheck: {
          tests: hc.test,
          interval: `${hc.intervalSeconds ?? 10}s`,
          timeout: `${hc.timeoutSeconds ?? 5}s`,
          retries: hc.retries ?? 10,
          startPeriod: `${hc.startPeriodSeconds ?? 20}s`,
        },
        memory: memoryMiB(spec.memory),
        // Services come back after a crash or a host reboot; a job that failed is a deploy error.
        restart: isJob ? "no" : "unless-stopped",
        wait: !isJob,
        waitTimeout: isJob ? undefined : 300,
        attach: isJob,
        logs: isJob,
        mustRun: !isJob,
      },
      { parent, dependsOn: dependencyResources(spec) },
    );
    return { name: spec.name, kind: spec.kind, ports: spec.ports, resource: container };
  }

  image(spec: ImageSpec, parent: pulumi.Resource): pulumi.Output<string> {
    const image = new docker.Image(
      `${this.prefix}-${spec.name}-image`,
      {
        imageName: `${this.prefix}/${spec.name}:${spec.tag}`,
        build: { context: spec.context, dockerfile: spec.dockerfile, args: spec.args },
        // Built for the local engine only; a registry comes with the Kubernetes target.
        skipPush: true,
      },
      { parent },
    );
    return image.imageName;
  }

  /** KEY=value strings; the whole list turns secret when one value is (Docker takes one list). */
  private envs(spec: ServiceSpec): pulumi.Output<string[]> {
    const line = ([k, v]: [string, pulumi.Input<string>]) => pulumi.interpolate`${k}=${v}`;
    const plain = Object.entries(spec.env).map(line);
    const secret = Object.entries(spec.secretEnv ?? {}).map(line);
    const all = pulumi.all([...plain, ...secret]);
    return secret.length > 0 ? pulumi.secret(all) : all;
  }

  private volume(logical: string, parent: pulumi.Resource): docker.Volume {
    let v = this.volumes.get(logical);
    if (!v) {
      const name = `${this.prefix}-${logical}`;
      v = new docker.Volume(name, { name }, { parent });
      this.volumes.set(logical, v);
    }
    return v;
  }
}
