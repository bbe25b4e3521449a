/**
 * Prometheus in the stacks (infra/components/monitoring.ts), under mocks: what it scrapes, with
 * which rules, on both targets; a change of the rules rolls its pod; `monitoring: false` and the
 * `alerts` settings. That Prometheus runs and the alerts fire is the engine ring's (dev-up).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";
import { REPO_ROOT } from "../../../infra/spec";
import { DEV_CONFIG, Declared, Run, containers, envOf, hostnameOf, runProgram, unwrap } from "./harness";
import { FILES_HASH } from "../../../infra/targets/kubernetes";

const STAGING = {
  target: "kubernetes",
  registry: "ghcr.io/acme",
  namespace: "ns1",
  sparkWorkers: "2",
  kubeContext: "staging-cluster",
};
type Upload = { file: string; content: string };
const uploads = (r: Run): Upload[] => {
  const c = containers(r).find((x) => hostnameOf(x) === "prometheus");
  assert.ok(c, "no prometheus container");
  return unwrap(c.inputs.uploads) as Upload[];
};
const file = (r: Run, suffix: string) =>
  uploads(r).find((u) => u.file.endsWith(suffix))?.content ?? assert.fail(`no ${suffix}`);
const byName = (r: Run, type: string, name: string): Declared | undefined =>
  r.resources.find((x) => x.type === type && (x.inputs.metadata as { name?: string } | undefined)?.name === name);

describe("infra: Prometheus in every stack", () => {
  let dev: Run;
  let staging: Run;
  before(async () => {
    dev = await runProgram(DEV_CONFIG);
    staging = await runProgram(STAGING, "staging");
    assert.equal(staging.error, undefined, String(staging.error));
  });

  it("dev: scrapes each relay, processor and lag-exporter container by name (a stopped one is up 0), loads the rules, publishes 9090 on loopback", async () => {
    const config = file(dev, "prometheus.yml");
    assert.match(config, /job_name: "relay"\n\s+static_configs:\n\s+- targets:\n\s+- "relay:9464"\n/);
    assert.match(config, /job_name: "processor"\n\s+static_configs:\n\s+- targets:\n\s+- "processor:9464"\n/);
    assert.match(config, /job_name: "kafka-exporter"\n\s+static_configs:\n\s+- targets:\n\s+- "lag-exporter:9464"\n/);
    // node_exporter: one container, the host
    assert.match(config, /job_name: "node"\n\s+static_configs:\n\s+- targets:\n\s+- "node-exporter:9100"\n/);
    assert.doesNotMatch(config, /dns_sd_configs/);
    // replicas are containers <name>-1..N: each one a target
    const two = await runProgram({ ...DEV_CONFIG, processorReplicas: "2" });
    assert.match(
      file(two, "prometheus.yml"),
      /job_name: "processor"\n\s+static_configs:\n\s+- targets:\n\s+- "processor-1:9464"\n\s+- "processor-2:9464"\n/,
    );
    assert.match(config, /rule_files:\n\s+- "\/etc\/prometheus\/pipeline-rules\.yml"/);
    assert.match(file(dev, "pipeline-rules.yml"), /alert: "TargetDown"/);
    const c = containers(dev).find((x) => hostnameOf(x) === "prometheus")!;
    assert.equal(c.inputs.image, "prom/prometheus:v2.42.0");
    assert.deepEqual(unwrap(c.inputs.ports), [{ internal: 9090, external: 9090, ip: "127.0.0.1" }]);
    assert.equal(dev.outputs?.prometheusUrl, "http://127.0.0.1:9090");
    assert.equal(dev.outputs?.dashboardUrl, "http://127.0.0.1:9090/consoles/pipeline.html");
  });

  it("kubernetes: each worker's replicas and the lag exporter through a headless Service of their own, a StatefulSet with a claim, nobody may write it", () => {
    for (const w of ["relay", "processor", "lag-exporter", "node-exporter"]) {
      const svc = byName(staging, "kubernetes:core/v1:Service", `${w}-pods`);
      assert.ok(svc, `no ${w}-pods Service`);
      // not-ready pods too: a pod failing its probe is still scraped (up 0, or its metrics)
      assert.deepEqual(
        [
          (svc.inputs.spec as { clusterIP: string }).clusterIP,
          (svc.inputs.spec as { publishNotReadyAddresses: boolean }).publishNotReadyAddresses,
        ],
        ["None", true],
      );
    }
    const cm = byName(staging, "kubernetes:core/v1:ConfigMap", "prometheus-files")!;
    const data = Object.values(unwrap(cm.inputs.data) as Record<string, string>);
    assert.ok(
      data.some((d) => d.includes('- "processor-pods.ns1.svc"')),
      data.join("\n"),
    );
    // each node's node_exporter pod, by the DaemonSet's headless Service
    assert.ok(
      data.some((d) => d.includes('- "node-exporter-pods.ns1.svc"')),
      data.join("\n"),
    );
    const set = byName(staging, "kubernetes:apps/v1:StatefulSet", "prometheus")!;
    const spec = unwrap(set.inputs.spec) as {
      template: { metadata: { annotations?: Record<string, string> }; spec: { securityContext: { fsGroup: number } } };
    };
    assert.equal(spec.template.spec.securityContext.fsGroup, 65534);
    assert.match(spec.template.metadata.annotations?.[FILES_HASH] ?? "", /^[0-9a-f]{16}$/);
  });

  it("a change of an alert setting changes the rules file and the pod template's hash (the pod rolls); a bad setting stops the program", async () => {
    const hashOf = (r: Run) =>
      (
        unwrap(byName(r, "kubernetes:apps/v1:StatefulSet", "prometheus")!.inputs.spec) as {
          template: { metadata: { annotations: Record<string, string> } };
        }
      ).template.metadata.annotations[FILES_HASH];
    const changed = await runProgram({ ...STAGING, alerts: JSON.stringify({ targetDownFor: "1m" }) }, "staging");
    assert.notEqual(hashOf(changed), hashOf(staging));
    const devChanged = await runProgram({ ...DEV_CONFIG, alerts: JSON.stringify({ targetDownFor: "1m" }) });
    assert.match(file(devChanged, "pipeline-rules.yml"), /alert: "TargetDown"\n\s+expr: "up == 0"\n\s+for: "1m"/);
    const bad = await runProgram({ ...DEV_CONFIG, alerts: JSON.stringify({ targetDownFor: "soon" }) });
    assert.match(
      String(bad.error),
      /realtime-pipeline:alerts\.targetDownFor: a Prometheus duration such as 30s, 5m or 1h/,
    );
    assert.deepEqual(
      bad.resources.filter((r) => r.type !== "pulumi:pulumi:Stack").map((r) => r.type),
      [],
    );
  });

  it("the stand-in build (images/upstream/build.sh) makes the very image the program pins", () => {
    const build = fs.readFileSync(path.join(REPO_ROOT, "images/upstream/build.sh"), "utf8");
    const c = containers(dev).find((x) => hostnameOf(x) === "prometheus")!;
    assert.match(build, new RegExp(`\\[prometheus\\]="${String(c.inputs.image).replace(/[.]/g, "\\.")}"`));
  });

  it("monitoring: false declares no Prometheus, no exporter, no agent and no prometheusUrl or dashboardUrl", async () => {
    const off = await runProgram({ ...DEV_CONFIG, monitoring: "false" });
    const hosts = containers(off).map(hostnameOf);
    for (const h of ["prometheus", "lag-exporter", "postgres-exporter", "pushgateway", "statsd-exporter"])
      assert.ok(!hosts.includes(h), h);
    assert.deepEqual(
      hosts.filter((h) => h.startsWith("copy-")),
      [],
    );
    const kafkaEnv = (r: Run) => envOf(containers(r).find((c) => hostnameOf(c) === "kafka")!);
    assert.equal(kafkaEnv(off).KAFKA_OPTS, undefined);
    assert.match(kafkaEnv(dev).KAFKA_OPTS, /^-javaagent:\/opt\/jmx-agent\/jmx_prometheus_javaagent\.jar=9404:/);
    assert.equal(off.outputs?.prometheusUrl, undefined);
    assert.equal(off.outputs?.dashboardUrl, undefined);
  });
});
