/**
 * A long-running worker started in the background: `done` settles when it stops, `stop()` asks it
 * to stop (finishing the batch in hand) and waits. One shape for the relay and the processor.
 */
export interface WorkerHandle<T> {
  /** Settles when the worker stopped: its caller's signal, stop(), or its own end. */
  done: Promise<T>;
  stop(): Promise<T>;
}

/**
 * Runs `body` with a signal that aborts on the caller's signal or on stop(); `abort` lets the body
 * stop itself (a consumer that crashed for good).
 */
export function startStoppable<T>(
  external: AbortSignal | undefined,
  body: (signal: AbortSignal, abort: () => void) => Promise<T>,
): WorkerHandle<T> {
  const stopper = new AbortController();
  const signal = external ? AbortSignal.any([external, stopper.signal]) : stopper.signal;
  const abort = () => stopper.abort();
  const done = body(signal, abort);
  return {
    done,
    stop: () => {
      abort();
      return done;
    },
  };
}
