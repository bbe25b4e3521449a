/**
 * PNG screenshots of a running Prometheus's consoles and pages with Debian's chromium, headless
 * (`scripts/services up chromium` installs it). Debian's Prometheus serves the classic UI, so the
 * alerts and targets pages are under /classic. Before a console is shot, its HTML is fetched and must
 * carry no template error, and chromium's rendered DOM must hold a drawn graph (an <svg> in a
 * rickshaw_graph cell): a page of "No timeseries returned" alone is a failure when opts say so.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const SCREENSHOT_PAGES = ["/consoles/pipeline.html", "/classic/alerts", "/classic/targets"];

export interface ScreenshotOptions {
  /** The browser binary: default $CHROMIUM, else chromium on the PATH. */
  chromium?: string;
  /** Paths under prometheusUrl; default SCREENSHOT_PAGES. */
  pages?: string[];
  width?: number;
  height?: number;
  /** Virtual time the page's scripts get to fetch and draw the graphs. */
  budgetMs?: number;
  /** A PNG smaller than this is a blank or error page. */
  minBytes?: number;
  /** Each console must draw at least this many graphs (0: only check the template rendered). */
  minGraphs?: number;
  timeoutMs?: number;
}

/** $CHROMIUM, else chromium on the PATH; a clear error if there is none. */
export function chromiumPath(explicit = process.env.CHROMIUM): string {
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`chromium: ${explicit} does not exist (scripts/services up chromium)`);
    return explicit;
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    const p = join(dir, "chromium");
    if (dir && existsSync(p)) return p;
  }
  throw new Error("chromium not found: run `scripts/services up chromium` (as root), or set CHROMIUM");
}

/** Flags of every run: as root chromium needs --no-sandbox; TLS is checked as usual. */
function baseArgs(o: ScreenshotOptions): string[] {
  return [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    `--window-size=${o.width ?? 1280},${o.height ?? 1600}`,
    `--virtual-time-budget=${o.budgetMs ?? 10_000}`,
  ];
}

/** Throws unless the console's template renders without error. */
export async function checkConsoleTemplate(url: string): Promise<void> {
  const res = await fetch(url);
  const body = await res.text();
  const err = body.match(/error executing template[^\n]*/i)?.[0];
  if (!res.ok || err) throw new Error(`${url}: HTTP ${res.status}${err ? `: ${err}` : ""}`);
}

/** How many graphs the console's scripts drew (an <svg> inside a rickshaw_graph cell). */
export async function drawnGraphs(chromium: string, url: string, opts: ScreenshotOptions = {}): Promise<number> {
  const args = [...baseArgs(opts), "--dump-dom", url];
  const { stdout } = await run(chromium, args, { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout.match(/class="rickshaw_graph"[^>]*><svg/g)?.length ?? 0;
}

export async function captureScreenshots(
  prometheusUrl: string,
  outDir: string,
  opts: ScreenshotOptions = {},
): Promise<string[]> {
  const chromium = chromiumPath(opts.chromium);
  const base = prometheusUrl.replace(/\/+$/, "");
  const minBytes = opts.minBytes ?? 10_000;
  const args = baseArgs(opts);
  mkdirSync(outDir, { recursive: true });
  const files: string[] = [];
  for (const page of opts.pages ?? SCREENSHOT_PAGES) {
    const url = `${base}${page}`;
    if (page.startsWith("/consoles/")) {
      await checkConsoleTemplate(url);
      const drawn = await drawnGraphs(chromium, url, opts);
      if (drawn < (opts.minGraphs ?? 0)) throw new Error(`${url}: ${drawn} graphs drawn, want ${opts.minGraphs}`);
    }
    // named by the path alone: a console's #pctc (its time range) stays out of the file name
    const file = join(
      outDir,
      `${page
        .replace(/#.*$/, "")
        .replace(/^\/+/, "")
        .replace(/\.html$/, "")
        .replace(/[^A-Za-z0-9]+/g, "-")}.png`,
    );
    rmSync(file, { force: true });
    try {
      await run(chromium, [...args, `--screenshot=${file}`, url], { timeout: opts.timeoutMs ?? 60_000 });
    } catch (e) {
      throw new Error(`chromium could not shoot ${url}: ${(e as Error).message}`);
    }
    if (!existsSync(file)) throw new Error(`chromium wrote no screenshot of ${url} to ${file}`);
    const size = statSync(file).size;
    if (size < minBytes) throw new Error(`${file}: ${size} bytes, under ${minBytes}: a blank or error page of ${url}`);
    files.push(file);
  }
  return files;
}
