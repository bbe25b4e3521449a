/**
 * Prometheus console templates: the pipeline's dashboards, served by Prometheus itself at
 * /consoles/<name>.html (no Grafana here). The templates are real files beside this module
 * (consoles/*.html, *.lib), so they can be edited and rendered as they are; Pulumi runs infra/
 * from source (Pulumi.yaml's main, TypeScript through ts-node), so __dirname is this folder. The
 * libraries are ours: Debian's prometheus package ships none (consoles/prom.lib says why).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export const CONSOLES_DIR = "/etc/prometheus/consoles";
export const CONSOLE_LIBRARIES_DIR = "/etc/prometheus/console_libraries";

const SOURCE_DIR = join(__dirname, "consoles");

/** The consoles, in menu order; each is consoles/<name>.html and a _menuItem of menu.lib. */
export const CONSOLES = ["pipeline", "kafka", "cassandra", "postgres", "airflow"] as const;

/** Where Prometheus serves the pipeline's console: the stack's dashboardUrl output. */
export const PIPELINE_CONSOLE = "/consoles/pipeline.html";

/** The two flags that serve the files of consoleFiles() at /consoles. */
export function consoleFlags(): string[] {
  return [`--web.console.templates=${CONSOLES_DIR}`, `--web.console.libraries=${CONSOLE_LIBRARIES_DIR}`];
}

/** Every file to write into the Prometheus container: the libraries, then the consoles. */
export function consoleFiles(): { path: string; content: string }[] {
  const read = (name: string) => readFileSync(join(SOURCE_DIR, name), "utf8");
  // every .lib found, so a new library cannot be left out of the container
  const libs = readdirSync(SOURCE_DIR)
    .filter((f) => f.endsWith(".lib"))
    .sort();
  return [
    ...libs.map((f) => ({ path: `${CONSOLE_LIBRARIES_DIR}/${f}`, content: read(f) })),
    ...CONSOLES.map((c) => ({ path: `${CONSOLES_DIR}/${c}.html`, content: read(`${c}.html`) })),
  ];
}
