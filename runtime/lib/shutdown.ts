/**
 * Graceful stop: the first SIGTERM/SIGINT aborts the returned signal, so workers finish (or give
 * back) the batch in hand and return; a second signal exits at once.
 */
import type { Logger } from "./logger";

export function onShutdownSignal(log: Logger): { signal: AbortSignal; dispose(): void } {
  const ctl = new AbortController();
  const handler = (sig: NodeJS.Signals) => {
    if (ctl.signal.aborted) {
      log.warn({ sig }, "second signal: exiting now");
      process.exit(130);
    }
    log.info({ sig }, "stopping: finishing the batch in hand");
    ctl.abort();
  };
  process.on("SIGTERM", handler);
  process.on("SIGINT", handler);
  return {
    signal: ctl.signal,
    dispose: () => {
      process.off("SIGTERM", handler);
      process.off("SIGINT", handler);
    },
  };
}
