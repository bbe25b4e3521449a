/** pino JSON logger, one per worker, tagged with the worker name. */
import pino from "pino";

export type Logger = pino.Logger;

export function createLogger(worker: string, level: string = process.env.LOG_LEVEL || "info"): Logger {
  return pino({ level, base: { worker, pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime });
}
