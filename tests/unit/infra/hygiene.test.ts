import { strict as assert } from "node:assert";
import { goDuration } from "../../../infra/targets/docker";
import { containers, Declared, DEV_CONFIG, devRun, hostnameOf, Run, runProgram, unwrap } from "./harness";

const STATEFUL: Record<string, string[]> = {
  postgres: ["/var/lib/postgresql/data"],
  zookeeper: ["/var/lib/zookeeper/data", "/var/lib/zookeeper/log"],
  kafka: ["/var/lib/kafka/data"],
  cassandra: ["/var/lib/cassandra"],
  "airflow-webserver": ["/opt/airflow/logs"],
  "airflow-scheduler": ["/opt/airflow/logs"],
  "spark-driver": ["/opt/spark/work-dir"],
  "spark-worker-1": ["/opt/spark/work-dir"],
};

describe("infra: every container is production-shaped", () => {
  let run: Run;
  before(async () => {
    run = await devRun();
    assert.equal(run.error, undefined, String(run.error));
  });

  // The target's own label says which containers are jobs (run once, waited for).
  const isJob = (c: Declared) =>
    (unwrap(c.inputs.labels) as { label: string; value: string }[]).some(
      (l) => l.label === "realtime-pipeline.kind" && l.value === "job",
    );

  it("the jobs are the pipeline's steps and the JMX agent's copies", () => {
    const jobs = containers(run).filter(isJob).map(hostnameOf).sort();
    assert.deepEqual(jobs, [
      "airflow-init",
      "cassandra-auth",
      "copy-cassandra-jmx-agent",
      "copy-kafka-jmx-agent",
      "copy-zookeeper-jmx-agent",
      "kafka-topics",
      "postgres-roles",
    ]);
  });

  it("a service has a health check; a job has none (its exit code is the answer)", () => {
    for (const c of containers(run).filter(isJob)) assert.equal(c.inputs.healthcheck, undefined, hostnameOf(c));
    for (const c of containers(run).filter((x) => !isJob(x))) {
      const hc = unwrap(c.inputs.healthcheck) as { tests?: string[]; interval?: string; retries?: number } | undefined;
      assert.ok(
        hc?.tests && hc.tests.length >= 2 && /^CMD(-SHELL)?$/.test(hc.tests[0]),
        `${hostnameOf(c)} has no health check`,
      );
      assert.ok(hc.interval && hc.retries, `${hostnameOf(c)}: health check without interval/retries`);
    }
  });

  it("writes health check durations as the engine reads them back (Go durations: 1m0s, not 60s), so a second up changes nothing", () => {
    assert.deepEqual([0, 5, 59, 60, 90, 600, 3600, 3725].map(goDuration), [
      "0s",
      "5s",
      "59s",
      "1m0s",
      "1m30s",
      "10m0s",
      "1h0m0s",
      "1h2m5s",
    ]);
    assert.throws(() => goDuration(1.5), /whole seconds/);
    const go = /^(?:[1-9]\d*h(?:[0-5]?\d)m(?:[0-5]?\d)s|[1-5]?\dm(?:[0-5]?\d)s|[0-5]?\ds)$/;
    for (const c of containers(run).filter((x) => !isJob(x))) {
      const hc = unwrap(c.inputs.healthcheck) as Record<string, string>;
      for (const k of ["interval", "timeout", "startPeriod"]) assert.match(hc[k], go, `${hostnameOf(c)} ${k}`);
    }
  });

  it("has a memory limit from config", async () => {
    // A copy of files (the JMX agent's) and a Go exporter need little; every JVM and worker at least 256 MiB.
    const small = (h: string) =>
      h.startsWith("copy-") || ["postgres-exporter", "pushgateway", "statsd-exporter", "node-exporter"].includes(h);
    for (const c of containers(run)) {
      const least = small(hostnameOf(c)) ? 32 : 256;
      assert.ok(Number(c.inputs.memory) >= least, `${hostnameOf(c)}: memory ${c.inputs.memory}`);
    }
    const r = await runProgram({ ...DEV_CONFIG, memory: JSON.stringify({ kafka: "3g" }) });
    assert.equal(containers(r).find((c) => hostnameOf(c) === "kafka")!.inputs.memory, 3072);
  });

  it("has a restart policy: services come back, jobs run once and are waited for", () => {
    const runs = run.resources.filter((r) => r.type === "pulumi-nodejs:dynamic/realtime-pipeline:JobRun");
    for (const c of containers(run)) {
      const job = isJob(c);
      assert.equal(c.inputs.restart, job ? "no" : "unless-stopped", hostnameOf(c));
      if (!job) assert.equal(c.inputs.wait, true, hostnameOf(c));
      // A job's container is created stopped; its JobRun runs it and fails `up` on a non-zero exit
      // (the provider's attach counted any exit as success). tests/stacks checks that for real.
      if (job) {
        assert.equal(c.inputs.start, false, hostnameOf(c));
        assert.equal(c.inputs.attach, undefined, hostnameOf(c));
        assert.equal(runs.filter((r) => r.name === `${c.name}-run`).length, 1, `${hostnameOf(c)} has no JobRun`);
      }
    }
  });

  it("runs a pinned image: a tag, never latest", () => {
    for (const c of containers(run)) {
      const image = String(c.inputs.image);
      const tag = /:([^/:@]+)$/.exec(image)?.[1];
      assert.ok(tag, `${hostnameOf(c)}: ${image} has no tag`);
      assert.notEqual(tag, "latest", `${hostnameOf(c)}: ${image}`);
    }
  });

  it("keeps state in named volumes", () => {
    const volumes = new Set(
      run.resources.filter((r) => r.type === "docker:index/volume:Volume").map((v) => v.inputs.name),
    );
    for (const [host, paths] of Object.entries(STATEFUL)) {
      const c = containers(run).find((x) => hostnameOf(x) === host)!;
      const mounts = (c.inputs.volumes ?? []) as { volumeName: string; containerPath: string }[];
      for (const p of paths) {
        const m = mounts.find((x) => x.containerPath === p);
        assert.ok(m, `${host}: nothing mounted at ${p}`);
        assert.ok(volumes.has(m.volumeName), `${host}: ${m.volumeName} is not a declared volume`);
      }
    }
  });

  it("node-exporter reads the host's / read-only at /host, a bind mount; no other container binds a host folder", () => {
    const binds = (c: Declared) =>
      (unwrap(c.inputs.mounts) ?? []) as { type: string; source: string; target: string; readOnly: boolean }[];
    const ne = containers(run).find((c) => hostnameOf(c) === "node-exporter")!;
    assert.deepEqual(binds(ne), [{ type: "bind", source: "/", target: "/host", readOnly: true }]);
    assert.ok((ne.inputs.command as string[]).includes("--path.rootfs=/host"));
    for (const c of containers(run).filter((x) => x !== ne)) assert.deepEqual(binds(c), [], hostnameOf(c));
  });

  it("publishes only the ports people use, on the bind address", () => {
    const published = containers(run).flatMap((c) =>
      ((c.inputs.ports ?? []) as { internal: number; external: number; ip: string }[]).map((p) => ({
        host: hostnameOf(c),
        ...p,
      })),
    );
    assert.deepEqual(published.map((p) => `${p.host}:${p.external}`).sort(), [
      "airflow-webserver:8088",
      "cassandra:9042",
      "control-center:9021",
      "kafka:9092",
      "prometheus:9090",
      "schema-registry:8081",
      "spark-master:8090",
    ]);
    for (const p of published) assert.equal(p.ip, "127.0.0.1", p.host);
  });

  it("binds published ports to the configured address and ports", async () => {
    const r = await runProgram({ ...DEV_CONFIG, bindAddress: "10.0.0.5", ports: JSON.stringify({ airflow: 18088 }) });
    const web = containers(r).find((c) => hostnameOf(c) === "airflow-webserver")!;
    assert.deepEqual(web.inputs.ports, [{ internal: 8080, external: 18088, ip: "10.0.0.5" }]);
  });
});
