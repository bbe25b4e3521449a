/** Pulumi entry point (Pulumi.yaml `main: infra/`): the module's exports are the stack outputs. */
import { runStack } from "./program";

export = runStack();
