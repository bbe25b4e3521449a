/**
 * The Spark image carries every module of the job: a module the job imports from its own folder
 * but the Dockerfile does not copy runs in the repository (the integration ring) and crashes the
 * driver in the stacks (ModuleNotFoundError).
 */
import { strict as assert } from "node:assert";
import * as fs from "node:fs";
import * as path from "node:path";

const ROOT = path.resolve(__dirname, "../..");
const JOB_DIR = "images/spark/job";

describe("the Spark image", () => {
  it("copies the job and every module it imports from its own folder", () => {
    const job = fs.readFileSync(path.join(ROOT, JOB_DIR, "users_by_country.py"), "utf8");
    const local = [...job.matchAll(/^\s*(?:from|import) (\w+)/gm)]
      .map((m) => m[1])
      .filter((m) => fs.existsSync(path.join(ROOT, JOB_DIR, `${m}.py`)));
    assert.ok(local.includes("progress_metrics"), `the job imports ${local.join(", ") || "no module of its folder"}`);
    const dockerfile = fs.readFileSync(path.join(ROOT, "images/spark/Dockerfile"), "utf8");
    const sources = [...dockerfile.matchAll(/^COPY (?:--\S+ )*(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
    const copied = (file: string) =>
      sources.some((s) =>
        new RegExp(`^${s.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*")}$`).test(file),
      );
    for (const f of ["users_by_country", ...local])
      assert.ok(copied(`${JOB_DIR}/${f}.py`), `images/spark/Dockerfile copies no ${JOB_DIR}/${f}.py`);
  });
});
