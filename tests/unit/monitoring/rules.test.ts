/**
 * The Prometheus rules infra/monitoring renders: promtool accepts them, and `promtool test rules`
 * shows each alert firing on its failing series only after its `for`, and silent on healthy ones.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { toYaml, type Yaml } from "../../../infra/catalog/yaml";
import { alertRules, renderRules, ruleGroups } from "../../../infra/monitoring/rules";
import { monitoringSettings } from "../../../infra/monitoring/settings";
import { alertCases, minutes, type AlertCase } from "./alert-cases";
import { promtool } from "./promtool";

const RULES_FILE = "pipeline-rules.yml";
const HEALTHY_AT = 80;
const settings = monitoringSettings();
const alerts = alertRules(ruleGroups(settings));

/** The alert's summary as Prometheus renders it; a label the alert lacks shows as "undefined" here, and fails. */
function expandLabels(template: string, labels: Record<string, string>): string {
  assert.doesNotMatch(template, /\$value/, "summaries use label templates only");
  return template.replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, name: string) => String(labels[name]));
}

const series = (list: AlertCase["failing"]): Yaml => list.map((x) => ({ series: x.series, values: x.values }));

function testFile(c: AlertCase): string {
  const rule = alerts.find((a) => a.alert === c.alert);
  if (!rule) throw new Error(`no alert ${c.alert} in the rules`);
  const firesAt = c.onset + minutes(rule.for);
  const expected = {
    exp_labels: { ...c.labels, severity: rule.labels.severity },
    exp_annotations: { ...rule.annotations, summary: expandLabels(rule.annotations.summary, c.labels) },
  };
  const at = (t: number, exp: Yaml[]) => ({ eval_time: `${Math.max(0, t)}m`, alertname: c.alert, exp_alerts: exp });
  return toYaml({
    rule_files: [RULES_FILE],
    evaluation_interval: "1m",
    tests: [
      {
        interval: "1m",
        input_series: series(c.failing),
        alert_rule_test: [at(firesAt - 1, []), at(firesAt + 1, [expected])],
      },
      { interval: "1m", input_series: series(c.healthy), alert_rule_test: [at(HEALTHY_AT, [])] },
    ],
  });
}

/** One promtool run for every case (a process each is seconds on a loaded machine); a result per file. */
function testAll(dir: string, files: string[]): (file: string) => boolean {
  const r = promtool(["test", "rules", ...files], dir);
  return (file) => r.output.includes(`Unit Testing:  ${file}\n  SUCCESS`);
}

describe("Prometheus rules (infra/monitoring), checked by promtool", function () {
  this.timeout(60_000);
  const fileOf = (c: AlertCase) => `${c.alert}-${c.scenario.replace(/\W+/g, "-")}.test.yml`;
  const cases = alertCases(settings).map((c) => ({ c, file: fileOf(c) }));
  let dir = "";
  let passed: (file: string) => boolean = () => false;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "pipeline-rules-"));
    writeFileSync(join(dir, RULES_FILE), renderRules(ruleGroups(settings)));
    for (const { c, file } of cases) writeFileSync(join(dir, file), testFile(c));
    passed = testAll(
      dir,
      cases.map((x) => x.file),
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("promtool check rules accepts the rendered file", () => {
    const r = promtool(["check", "rules", RULES_FILE], dir);
    assert.ok(r.ok, r.output);
    assert.match(r.output, new RegExp(`SUCCESS: ${ruleGroups(settings).flatMap((g) => g.rules).length} rules found`));
  });

  it("every alert has a failing scenario and a runbook row in docs/operating.md", () => {
    const tested = new Set(cases.map((x) => x.c.alert));
    const runbook = readFileSync(resolve(__dirname, "../../../docs/operating.md"), "utf8");
    for (const a of alerts) {
      assert.ok(tested.has(a.alert), `${a.alert} has no case in alert-cases.ts`);
      const row = new RegExp(`^\\| \`${a.alert}\` \\|`, "m");
      assert.match(runbook, row, `docs/operating.md has no runbook row for ${a.alert}`);
    }
  });

  it("docs/reference.md names every monitoring setting with its default", () => {
    const ref = readFileSync(resolve(__dirname, "../../../docs/reference.md"), "utf8");
    for (const [key, value] of Object.entries(settings)) {
      const row = new RegExp(`^\\| \`${key}\` \\| \`${value}\` \\|`, "m");
      assert.match(ref, row, `docs/reference.md: no row for ${key} (${value})`);
    }
  });

  it("a bad setting is refused, naming the key", () => {
    assert.throws(() => monitoringSettings({ backlogFor: "5 minutes" }), /backlogFor: a Prometheus duration/);
    assert.throws(() => monitoringSettings({ diskFreeMin: 10 }), /diskFreeMin/);
    assert.throws(() => monitoringSettings({ backlogWindows: "10m" } as never), /backlogWindows/);
  });

  for (const { c, file } of cases) {
    it(`${c.alert}: ${c.scenario}: fires after its for, not before; silent when healthy`, () => {
      if (passed(file)) return;
      const alone = promtool(["test", "rules", file], dir);
      assert.fail(`${alone.output}\n${readFileSync(join(dir, file), "utf8")}`);
    });
  }
});
