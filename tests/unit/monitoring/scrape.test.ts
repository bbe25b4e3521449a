/**
 * prometheus.yml from renderScrapeConfig: promtool accepts it with the rules file beside it, each
 * job scrapes exactly its targets, and a target that is not host:port is refused before rendering.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { renderRules } from "../../../infra/monitoring/rules";
import { renderScrapeConfig } from "../../../infra/monitoring/scrape";
import { JOBS } from "../../../infra/monitoring/settings";
import { promtool } from "./promtool";

describe("prometheus.yml (infra/monitoring/scrape.ts)", () => {
  const jobs = {
    [JOBS.relay]: ["relay:9464"],
    [JOBS.processor]: ["processor-0.processor:9464", "processor-1.processor:9464"],
    [JOBS.pushgateway]: { targets: ["pushgateway:9091"], honorLabels: true },
    [JOBS.kafka]: { dns: { names: ["kafka.ns.svc"], port: 7071 } },
  };

  it("promtool check config accepts it, the rules file it names included", () => {
    const dir = mkdtempSync(join(tmpdir(), "pipeline-prom-"));
    try {
      writeFileSync(join(dir, "pipeline-rules.yml"), renderRules());
      writeFileSync(join(dir, "prometheus.yml"), renderScrapeConfig(jobs, { ruleFiles: ["pipeline-rules.yml"] }));
      const r = promtool(["check", "config", "prometheus.yml"], dir);
      assert.ok(r.ok, r.output);
      assert.match(r.output, /SUCCESS: 1 rule files found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("each job scrapes its own targets; only the Pushgateway honours the pushers' labels", () => {
    const y = renderScrapeConfig(jobs);
    const job = (name: string) => y.slice(y.indexOf(`job_name: "${name}"`)).split("- job_name:")[0];
    assert.match(job("processor"), /- "processor-0\.processor:9464"\n\s+- "processor-1\.processor:9464"\n\s*$/);
    assert.doesNotMatch(job("relay"), /processor|honor_labels/);
    assert.match(job("pushgateway"), /honor_labels: true/);
    // a service's replicas, however many: every A record of its name
    assert.match(job("kafka"), /dns_sd_configs:\n\s+- names:\n\s+- "kafka\.ns\.svc"\n\s+type: "A"\n\s+port: 7071/);
    assert.doesNotMatch(job("kafka"), /static_configs/);
  });

  it("refuses a target that is not host:port, and a job without targets", () => {
    const url = /relay: "http:\/\/relay:9464" is not host:port/;
    assert.throws(() => renderScrapeConfig({ relay: ["http://relay:9464"] }), url);
    assert.throws(() => renderScrapeConfig({ relay: ["relay:99999"] }), /is not host:port/);
    assert.throws(() => renderScrapeConfig({ relay: [] }), /no targets/);
    assert.throws(
      () => renderScrapeConfig({ relay: { dns: { names: ["relay pods"], port: 9464 } } }),
      /"relay pods" is not a DNS name/,
    );
    assert.throws(() => renderScrapeConfig({ relay: { dns: { names: ["relay"], port: 0 } } }), /port 0 is not 1-65535/);
  });
});
