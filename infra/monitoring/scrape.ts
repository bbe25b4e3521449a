/**
 * prometheus.yml for a list of targets: job name -> host:port list (static configs), loading the
 * rules file renderRules() writes. The deployment step passes each stack's addresses; the job
 * names the rules select on are JOBS (settings.ts).
 */
import { toYaml, type Yaml } from "../catalog/yaml";

export interface ScrapeJob {
  targets: string[];
  /** Pushgateway: keep the job and instance labels the pushers set. */
  honorLabels?: boolean;
  metricsPath?: string;
}

export interface ScrapeConfigOptions {
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** Paths of rules files, relative to prometheus.yml or absolute. */
  ruleFiles?: string[];
}

const JOB_NAME = /^[a-zA-Z_][a-zA-Z0-9_-]*$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:[0-9]{1,5}$/;

function scrapeJob(name: string, job: string[] | ScrapeJob): Record<string, Yaml> {
  const j = Array.isArray(job) ? { targets: job } : job;
  if (!JOB_NAME.test(name)) throw new Error(`scrape job name ${JSON.stringify(name)}: letters, digits, _ and - only`);
  if (j.targets.length === 0) throw new Error(`scrape job ${name}: no targets`);
  for (const t of j.targets) {
    const port = Number(t.split(":").pop());
    if (!HOST_PORT.test(t) || port < 1 || port > 65535) {
      throw new Error(`scrape job ${name}: ${JSON.stringify(t)} is not host:port`);
    }
  }
  return {
    job_name: name,
    ...(j.honorLabels ? { honor_labels: true } : {}),
    ...(j.metricsPath ? { metrics_path: j.metricsPath } : {}),
    static_configs: [{ targets: j.targets }],
  };
}

export function renderScrapeConfig(jobs: Record<string, string[] | ScrapeJob>, o: ScrapeConfigOptions = {}): string {
  return toYaml({
    global: { scrape_interval: o.scrapeInterval ?? "15s", evaluation_interval: o.evaluationInterval ?? "15s" },
    rule_files: o.ruleFiles ?? ["pipeline-rules.yml"],
    scrape_configs: Object.entries(jobs).map(([name, job]) => scrapeJob(name, job)),
  });
}
