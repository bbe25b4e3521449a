/** Start the offline randomuser-style API worker (runtime/main.ts api) as a child process. */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";

export interface ApiChild {
  url: string;
  proc: ChildProcess;
  stop: () => Promise<void>;
}

const REPO = resolve(__dirname, "..", "..", "..");

export function startApi(extraEnv: Record<string, string> = {}): Promise<ApiChild> {
  const proc = spawn(resolve(REPO, "node_modules/.bin/tsx"), ["runtime/main.ts", "api"], {
    cwd: REPO,
    env: { ...process.env, API_PORT: "0", METRICS_PORT: "0", LOG_LEVEL: "info", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const stop = () =>
    new Promise<void>((r) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return r();
      proc.once("exit", () => r());
      proc.kill("SIGTERM");
    });
  return new Promise((res, rej) => {
    let buf = "";
    const timer = setTimeout(() => {
      void stop();
      rej(new Error(`api did not start:\n${buf}`));
    }, 30_000);
    proc.stdout!.on("data", (b: Buffer) => {
      buf += b.toString();
      const m = /"url":"(http:[^"]+)"/.exec(buf);
      if (m) {
        clearTimeout(timer);
        res({ url: m[1], proc, stop });
      }
    });
    proc.stderr!.on("data", (b: Buffer) => (buf += b.toString()));
    proc.on("exit", (code) => {
      clearTimeout(timer);
      rej(new Error(`api exited ${code}:\n${buf}`));
    });
  });
}
