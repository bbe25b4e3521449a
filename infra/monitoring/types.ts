/** The shapes of Prometheus rule groups, as rules files hold them. */

export type Severity = "critical" | "warning";

export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: Severity };
  annotations: { summary: string; runbook_url: string };
}

export interface RecordingRule {
  record: string;
  expr: string;
}

export interface RuleGroup {
  name: string;
  rules: (AlertRule | RecordingRule)[];
}

/** Where each alert's runbook line is: one row per alert, named by the alert. */
export const RUNBOOK = "docs/operating.md#alerts";
