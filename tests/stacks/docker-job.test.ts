/**
 * A job on the Docker target, on the real engine (mocks cannot see this): one that exits
 * non-zero fails `pulumi up`, with the end of its log in the error, and runs again on the next
 * `up`. The provider's own `attach` recorded any exit code as success and never re-ran it.
 * The program is tests/stacks/fixtures/docker-job (the target's job, alone).
 */
import { strict as assert } from "node:assert";
import * as path from "node:path";
import { Stack } from "@pulumi/pulumi/automation";
import { Project, report, tools } from "./harness";

describe("stacks: a Docker job that exits non-zero fails up and runs again", function () {
  this.timeout(10 * 60 * 1000);
  let project: Project;
  let stack: Stack;

  before(async () => {
    const t = tools();
    assert.ok(t.dockerHost, "no Docker engine: scripts/services up docker");
    project = await Project.create(t);
    stack = await project.stack("jobs", {}, path.join(__dirname, "fixtures/docker-job"));
  });

  after(async () => {
    if (stack) await stack.destroy().catch(() => undefined);
    if (stack) await stack.workspace.removeStack("jobs").catch(() => undefined);
    project?.remove();
  });

  it("the first up fails with the job's exit code and log; the second runs it again and passes", async () => {
    await assert.rejects(project.up(stack), (e: Error) => {
      assert.match(e.message, /job job-fixture-jobs-flaky exited with code 3/);
      assert.match(e.message, /first run fails/);
      return true;
    });
    const second = await project.up(stack);
    report("jobs (second up)", second);
    assert.deepEqual(second.errors, []);
    assert.equal(second.changes.create, 1, "the job's run is created by the second up");
    const third = await project.up(stack);
    assert.deepEqual(Object.keys(third.changes), ["same"], "a passed job does not run again");
  });
});
