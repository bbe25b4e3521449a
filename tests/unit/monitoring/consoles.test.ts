/**
 * The console templates (infra/monitoring/consoles.ts): every file lands under the two directories
 * Prometheus is pointed at, the menu lists each console, and every PromQL expression in them parses
 * (promtool) and names only series that exist: a recording rule, a worker metric, a series an alert
 * reads, or an exporter series listed with its source in exporter-metrics.ts.
 */
import { strict as assert } from "node:assert";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { toYaml } from "../../../infra/catalog/yaml";
import {
  CONSOLES,
  CONSOLES_DIR,
  CONSOLE_LIBRARIES_DIR,
  consoleFiles,
  consoleFlags,
} from "../../../infra/monitoring/consoles";
import { CONSOLE_EXPORTER_METRICS } from "../../../infra/monitoring/exporter-metrics";
import { alertRules, ruleGroups } from "../../../infra/monitoring/rules";
import { recordingGroup } from "../../../infra/monitoring/recording";
import { metrics } from "../../../runtime/lib/metrics";
import { consoleExprs, seriesNames } from "./console-exprs";
import { promtool } from "./promtool";

/** Names the workers' registry exposes, a histogram's three series included. */
async function workerMetricNames(): Promise<string[]> {
  const all = await metrics().registry.getMetricsAsJSON();
  return all.flatMap((m) =>
    String(m.type) === "histogram" ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
  );
}

describe("console templates (infra/monitoring/consoles.ts)", () => {
  const files = consoleFiles();

  it("writes each library and console under the directories the flags name", () => {
    assert.deepEqual(consoleFlags(), [
      `--web.console.templates=${CONSOLES_DIR}`,
      `--web.console.libraries=${CONSOLE_LIBRARIES_DIR}`,
    ]);
    for (const f of files) {
      const dir = f.path.endsWith(".lib") ? CONSOLE_LIBRARIES_DIR : CONSOLES_DIR;
      assert.ok(f.path.startsWith(`${dir}/`) && !f.path.slice(dir.length + 1).includes("/"), f.path);
      assert.ok(f.content.length > 0, `${f.path} is empty`);
    }
    const paths = files.map((f) => f.path);
    for (const lib of ["prom.lib", "menu.lib"]) assert.ok(paths.includes(`${CONSOLE_LIBRARIES_DIR}/${lib}`), lib);
    assert.equal(new Set(paths).size, paths.length, "a path twice");
  });

  it("ships every template in the folder and lists each console in the menu", () => {
    const source = join(__dirname, "../../../infra/monitoring/consoles");
    const htmls = readdirSync(source).filter((f) => f.endsWith(".html"));
    assert.deepEqual(htmls.sort(), CONSOLES.map((c) => `${c}.html`).sort());
    const menu = files.find((f) => f.path.endsWith("/menu.lib"))?.content ?? "";
    for (const c of CONSOLES) {
      assert.match(menu, new RegExp(`_menuItem" \\(args \\. "${c}\\.html" `), `${c} not in the menu`);
    }
  });

  it("every expression parses and names only series that exist", async () => {
    const recorded = recordingGroup().rules.map((r) => ("record" in r ? r.record : ""));
    const alerted = alertRules(ruleGroups()).flatMap((a) => seriesNames(a.expr));
    const known = new Set([
      ...recorded,
      ...(await workerMetricNames()),
      ...alerted,
      ...Object.keys(CONSOLE_EXPORTER_METRICS),
      "up",
      "ALERTS",
    ]);
    const exprs = files.flatMap((f) => consoleExprs(f.content).map((expr) => ({ file: f.path, expr })));
    for (const f of files) {
      const graphs = f.content.split("new PromConsole.Graph(").length - 1;
      assert.equal(f.content.split("expr:").length - 1, graphs, `${f.path}: a graph without expr`);
    }
    assert.ok(exprs.length >= 45, `only ${exprs.length} expressions found: the extraction missed some`);
    const unknown = exprs.flatMap(({ file, expr }) =>
      seriesNames(expr)
        .filter((n) => !known.has(n))
        .map((n) => `${file}: ${n} in ${expr}`),
    );
    assert.deepEqual(unknown, []);

    // promtool parses each as a recording rule's expr
    const dir = mkdtempSync(join(tmpdir(), "pipeline-consoles-"));
    try {
      const rules = exprs.map(({ expr }, i) => ({ record: `console:expr_${i}`, expr }));
      writeFileSync(join(dir, "consoles.yml"), toYaml({ groups: [{ name: "consoles", rules }] }));
      const r = promtool(["check", "rules", "consoles.yml"], dir);
      assert.ok(r.ok, r.output);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("the name extraction sees metrics and leaves functions, labels and keywords out", () => {
    const expr = "sum by (job) (rate(a_total{job='x',le=~\"b\"}[5m])) / on (job) b:c:d offset 5m > 0 and up";
    const names = seriesNames(expr);
    assert.deepEqual(names, ["a_total", "b:c:d", "up"]);
  });
});
