/**
 * prometheus.yml for a list of jobs, loading the rules file renderRules() writes. A job scrapes
 * fixed host:port targets, or every address a DNS name resolves to (a service's replicas, however
 * many run: Prometheus's dns_sd_configs, type A). The job names the rules select on are JOBS
 * (settings.ts).
 */
import { toYaml, type Yaml } from "../catalog/yaml";

export interface ScrapeJob {
  /** host:port targets. */
  targets?: string[];
  /** Every A record of these names, on `port` (a service's replicas). */
  dns?: { names: string[]; port: number };
  /** Pushgateway: keep the job and instance labels the pushers set. */
  honorLabels?: boolean;
  metricsPath?: string;
}

export interface ScrapeConfigOptions {
  scrapeInterval?: string;
  evaluationInterval?: string;
  /** Paths of rules files, relative to prometheus.yml or absolute. */
  ruleFiles?: string[];
  /** Seconds between two lookups of a DNS job's names: a new replica is scraped this soon. */
  dnsRefreshSeconds?: number;
}

const JOB_NAME = /^[a-zA-Z_][a-zA-Z0-9_-]*$/;
const HOST_PORT = /^[A-Za-z0-9.-]+:[0-9]{1,5}$/;
const DNS_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;
const validPort = (p: number) => Number.isInteger(p) && p >= 1 && p <= 65535;

function scrapeJob(name: string, job: string[] | ScrapeJob, o: ScrapeConfigOptions): Record<string, Yaml> {
  const j = Array.isArray(job) ? { targets: job } : job;
  if (!JOB_NAME.test(name)) throw new Error(`scrape job name ${JSON.stringify(name)}: letters, digits, _ and - only`);
  const targets = j.targets ?? [];
  if (targets.length === 0 && (j.dns?.names.length ?? 0) === 0) throw new Error(`scrape job ${name}: no targets`);
  for (const t of targets) {
    if (!HOST_PORT.test(t) || !validPort(Number(t.split(":").pop()))) {
      throw new Error(`scrape job ${name}: ${JSON.stringify(t)} is not host:port`);
    }
  }
  if (j.dns) {
    for (const n of j.dns.names)
      if (!DNS_NAME.test(n)) throw new Error(`scrape job ${name}: ${JSON.stringify(n)} is not a DNS name`);
    if (!validPort(j.dns.port)) throw new Error(`scrape job ${name}: port ${j.dns.port} is not 1-65535`);
  }
  return {
    job_name: name,
    ...(j.honorLabels ? { honor_labels: true } : {}),
    ...(j.metricsPath ? { metrics_path: j.metricsPath } : {}),
    ...(targets.length > 0 ? { static_configs: [{ targets }] } : {}),
    ...(j.dns && j.dns.names.length > 0
      ? {
          dns_sd_configs: [
            { names: j.dns.names, type: "A", port: j.dns.port, refresh_interval: `${o.dnsRefreshSeconds ?? 30}s` },
          ],
        }
      : {}),
  };
}

export function renderScrapeConfig(jobs: Record<string, string[] | ScrapeJob>, o: ScrapeConfigOptions = {}): string {
  return toYaml({
    global: { scrape_interval: o.scrapeInterval ?? "15s", evaluation_interval: o.evaluationInterval ?? "15s" },
    rule_files: o.ruleFiles ?? ["pipeline-rules.yml"],
    scrape_configs: Object.entries(jobs).map(([name, job]) => scrapeJob(name, job, o)),
  });
}
