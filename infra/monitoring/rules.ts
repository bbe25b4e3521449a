/**
 * The pipeline's Prometheus rules as data: the alert groups (alerts.ts) and the recording group
 * (recording.ts), rendered to one rules file that `promtool check rules` accepts.
 */
import { toYaml, type Yaml } from "../catalog/yaml";
import { alertGroups } from "./alerts";
import { recordingGroup } from "./recording";
import { monitoringSettings, type MonitoringSettings } from "./settings";
import type { AlertRule, RuleGroup } from "./types";

export type { AlertRule, RecordingRule, RuleGroup, Severity } from "./types";

export function ruleGroups(settings: MonitoringSettings = monitoringSettings()): RuleGroup[] {
  return [...alertGroups(settings), recordingGroup()];
}

export const alertRules = (groups: RuleGroup[]): AlertRule[] =>
  groups.flatMap((g) => g.rules).filter((r): r is AlertRule => "alert" in r);

/** The rules file: `rule_files` of prometheus.yml names it. */
export function renderRules(groups: RuleGroup[] = ruleGroups()): string {
  return toYaml({ groups: groups as unknown as Yaml });
}
