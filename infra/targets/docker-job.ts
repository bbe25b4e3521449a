/**
 * A job's run on the Docker target: starts the job's container (created, not started, by the
 * target) through the Docker Engine API, waits for it to exit, and fails when it exits non-zero,
 * with the end of its log. The docker provider's own `attach` waits but records any exit code
 * as success, so a failed kafka-topics or airflow-init counted as done and was never re-run.
 *
 * A failed run is not recorded (its create failed), so the next `up` runs the job again; a new
 * container (new image, env or arguments) is a new run. Dependents wait on this resource.
 *
 * The provider runs in Pulumi's dynamic-provider process: everything it uses is required inside
 * the functions (they are serialized), and the engine comes from DOCKER_HOST, as for the docker
 * provider itself.
 */
import * as pulumi from "@pulumi/pulumi";

export interface JobRunInputs {
  /** Container name (for messages). */
  name: pulumi.Input<string>;
  /** The container to run; a new id is a new run. */
  containerId: pulumi.Input<string>;
}

interface JobRunState {
  name: string;
  containerId: string;
  exitCode: number;
}

/** Runs one container to completion; throws when it exits non-zero. Self-contained (serialized). */
async function runContainer(name: string, id: string): Promise<number> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const http = require("node:http") as typeof import("node:http");
  const host = process.env.DOCKER_HOST || "unix:///var/run/docker.sock";
  const target = host.startsWith("unix://")
    ? { socketPath: host.slice("unix://".length) }
    : (() => {
        const u = new URL(host.replace(/^tcp:/, "http:"));
        return { host: u.hostname, port: Number(u.port || 2375) };
      })();
  const call = (method: string, path: string): Promise<{ status: number; body: Buffer }> =>
    new Promise((resolve, reject) => {
      const req = http.request({ ...target, method, path: `/v1.41${path}`, headers: { "content-type": "application/json" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
  const started = await call("POST", `/containers/${id}/start`);
  // 204: started; 304: already running (a run interrupted by a cancelled `up`): wait for it.
  if (started.status !== 204 && started.status !== 304) {
    throw new Error(`job ${name}: the engine refused to start container ${id}: HTTP ${started.status} ${started.body.toString()}`);
  }
  const waited = await call("POST", `/containers/${id}/wait`);
  if (waited.status !== 200) throw new Error(`job ${name}: waiting for it failed: HTTP ${waited.status} ${waited.body.toString()}`);
  const code = Number((JSON.parse(waited.body.toString()) as { StatusCode: number }).StatusCode);
  if (code !== 0) {
    const logs = await call("GET", `/containers/${id}/logs?stdout=1&stderr=1&tail=40`);
    // The log stream is multiplexed: 8-byte frame headers before each chunk.
    const lines: string[] = [];
    for (let i = 0; i + 8 <= logs.body.length; ) {
      const size = logs.body.readUInt32BE(i + 4);
      lines.push(logs.body.subarray(i + 8, i + 8 + size).toString());
      i += 8 + size;
    }
    throw new Error(`job ${name} exited with code ${code}; it runs again on the next \`pulumi up\`. Last lines of its log:\n${lines.join("").trimEnd()}`);
  }
  return code;
}

const jobRunProvider: pulumi.dynamic.ResourceProvider = {
  async create(inputs: JobRunState) {
    const exitCode = await runContainer(inputs.name, inputs.containerId);
    return { id: `${inputs.containerId}`, outs: { name: inputs.name, containerId: inputs.containerId, exitCode } };
  },
  async diff(_id: string, olds: JobRunState, news: JobRunState) {
    const replace = olds.containerId !== news.containerId;
    return { changes: replace || olds.name !== news.name, replaces: replace ? ["containerId"] : [], deleteBeforeReplace: false };
  },
  async update(_id: string, _olds: JobRunState, news: JobRunState) {
    return { outs: { ...news, exitCode: 0 } };
  },
};

/** One completed run of a job container. */
export class JobRun extends pulumi.dynamic.Resource {
  declare readonly exitCode: pulumi.Output<number>;

  constructor(name: string, args: JobRunInputs, opts?: pulumi.CustomResourceOptions) {
    super(jobRunProvider, name, { ...args, exitCode: undefined }, opts, "realtime-pipeline", "JobRun");
  }
}
