/**
 * The Kubernetes target: the same specs become a headless Service (so a service's name resolves to
 * its pod, as on the Docker network) and a StatefulSet, or a Job for a run-once spec. Start order
 * by health comes from Pulumi's await logic: a StatefulSet is created once its pod is ready (its
 * readiness probe is the spec's health check), a Job once it completed.
 */
import * as docker from "@pulumi/docker";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { memoryMiB } from "../config";
import { FileSpec, HealthCheck, ImageSpec, ServiceHandle, ServiceSpec, Target, dependencyResources } from "../spec";

export interface KubernetesTargetArgs {
  prefix: string;
  namespace: string;
  /** Registry the project's images are pushed to; the cluster pulls them from there. */
  registry: string;
  /** Storage class of the claims; the cluster default when absent. Shared volumes need ReadWriteMany. */
  storageClass?: string;
}

/** Exec form as it is; shell form through sh, as Docker runs it. */
function probeCommand(test: string[]): string[] {
  return test[0] === "CMD-SHELL" ? ["/bin/sh", "-c", test.slice(1).join(" ")] : test.slice(1);
}

function probe(hc: HealthCheck, failures: number): k8s.types.input.core.v1.Probe {
  return {
    exec: { command: probeCommand(hc.test) },
    initialDelaySeconds: hc.startPeriodSeconds ?? 20,
    periodSeconds: hc.intervalSeconds ?? 10,
    timeoutSeconds: hc.timeoutSeconds ?? 5,
    failureThreshold: failures,
  };
}

export class KubernetesTarget extends pulumi.ComponentResource implements Target {
  readonly prefix: string;
  readonly namespace: k8s.core.v1.Namespace;
  private readonly claims = new Map<string, k8s.core.v1.PersistentVolumeClaim>();
  private readonly args: KubernetesTargetArgs;

  constructor(name: string, args: KubernetesTargetArgs, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:kubernetes:Target", name, {}, opts);
    this.prefix = args.prefix;
    this.args = args;
    this.namespace = new k8s.core.v1.Namespace(`${args.prefix}-ns`, { metadata: { name: args.namespace } }, { parent: this });
    this.registerOutputs({ namespace: this.namespace.metadata.name });
  }

  service(spec: ServiceSpec, parent: pulumi.Resource): ServiceHandle {
    const name = `${this.prefix}-${spec.name}`;
    const namespace = this.namespace.metadata.name;
    const labels = { "app.kubernetes.io/name": spec.name, "app.kubernetes.io/part-of": this.prefix };
    const opts = { parent, dependsOn: dependencyResources(spec) };
    const secretKeys = Object.keys(spec.secretEnv ?? {});
    const secret =
      secretKeys.length > 0
        ? new k8s.core.v1.Secret(`${name}-env`, { metadata: { name: `${spec.name}-env`, namespace, labels }, stringData: pulumi.secret(spec.secretEnv ?? {}) }, { parent })
        : undefined;
    const files = spec.files ?? [];
    const configMap =
      files.length > 0
        ? new k8s.core.v1.ConfigMap(`${name}-files`, { metadata: { name: `${spec.name}-files`, namespace, labels }, data: Object.fromEntries(files.map((f, i) => [`f${i}`, f.content])) }, { parent })
        : undefined;

    const ports = Object.entries(spec.ports).map(([role, p]) => ({ name: role, port: p.container }));
    if (ports.length > 0) {
      // Headless: the name resolves to the pod itself (Cassandra's seeds, Kafka's advertised listener).
      // Not-ready pods are published too: Cassandra resolves its seed (itself) before it is ready.
      new k8s.core.v1.Service(
        `${name}-svc`,
        { metadata: { name: spec.name, namespace, labels }, spec: { clusterIP: "None", publishNotReadyAddresses: true, selector: labels, ports } },
        { parent },
      );
    }

    const mem = `${memoryMiB(spec.memory)}Mi`;
    const container: k8s.types.input.core.v1.Container = {
      name: spec.name,
      image: spec.image,
      // Docker's `command` replaces the image's CMD and keeps its ENTRYPOINT: Kubernetes calls that `args`.
      args: spec.command,
      env: [
        ...Object.entries(spec.env).map(([k, value]) => ({ name: k, value })),
        ...secretKeys.map((k) => ({ name: k, valueFrom: { secretKeyRef: { name: secret!.metadata.name, key: k } } })),
      ],
      ports: ports.map((p) => ({ name: p.name, containerPort: p.port })),
      resources: { requests: { memory: mem }, limits: { memory: mem } },
      volumeMounts: [
        ...(spec.volumes ?? []).map((v) => ({ name: v.volume, mountPath: v.path })),
        ...files.map((f, i) => ({ name: "files", mountPath: f.path, subPath: `f${i}` })),
      ],
      ...(spec.kind === "service"
        ? { readinessProbe: probe(spec.healthCheck, spec.healthCheck.retries ?? 10), livenessProbe: probe(spec.healthCheck, 3 * (spec.healthCheck.retries ?? 10)) }
        : {}),
    };
    const volumes = [
      ...(spec.volumes ?? []).map((v) => ({ name: v.volume, persistentVolumeClaim: { claimName: this.claim(v.volume, v.shared ?? false, parent).metadata.name } })),
      ...(configMap ? [{ name: "files", configMap: { name: configMap.metadata.name, defaultMode: this.fileMode(files) } }] : []),
    ];
    // No service links: a Service named kafka would put KAFKA_PORT=tcp://... into every pod, which
    // Confluent images read as their own (deprecated) setting and refuse to start.
    const podSpec = { enableServiceLinks: false, containers: [container], volumes, ...(spec.volumeGroup === undefined ? {} : { securityContext: { fsGroup: spec.volumeGroup } }) };

    const resource =
      spec.kind === "job"
        ? new k8s.batch.v1.Job(name, { metadata: { name: spec.name, namespace, labels }, spec: { backoffLimit: 4, template: { metadata: { labels }, spec: { ...podSpec, restartPolicy: "OnFailure" } } } }, opts)
        : new k8s.apps.v1.StatefulSet(
            name,
            { metadata: { name: spec.name, namespace, labels }, spec: { serviceName: spec.name, replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: podSpec } } },
            opts,
          );
    return { name: spec.name, kind: spec.kind, ports: spec.ports, resource };
  }

  image(spec: ImageSpec, parent: pulumi.Resource): pulumi.Output<string> {
    const image = new docker.Image(
      `${this.prefix}-${spec.name}-image`,
      { imageName: `${this.args.registry}/${this.prefix}-${spec.name}:${spec.tag}`, build: { context: spec.context, dockerfile: spec.dockerfile, args: spec.args, platform: "linux/amd64" } },
      { parent },
    );
    // By digest: a rebuilt image under the same tag still rolls the pods.
    return image.repoDigest;
  }

  private claim(volume: string, shared: boolean, parent: pulumi.Resource): k8s.core.v1.PersistentVolumeClaim {
    let c = this.claims.get(volume);
    if (!c) {
      c = new k8s.core.v1.PersistentVolumeClaim(
        `${this.prefix}-${volume}`,
        {
          metadata: { name: volume, namespace: this.namespace.metadata.name },
          spec: { accessModes: [shared ? "ReadWriteMany" : "ReadWriteOnce"], storageClassName: this.args.storageClass, resources: { requests: { storage: "10Gi" } } },
        },
        { parent },
      );
      this.claims.set(volume, c);
    }
    return c;
  }

  private fileMode(files: FileSpec[]): number {
    return files.some((f) => f.executable) ? 0o755 : 0o644;
  }
}
