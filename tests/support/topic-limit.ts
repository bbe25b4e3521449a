/**
 * Waits until a topic's lowered max.message.bytes holds. AlterConfigs answers once the controller
 * has the new value, before the brokers apply it, so a test that lowers the limit and produces at
 * once may still see its records taken. The probe sends a record just over the limit, keyed
 * LIMIT_PROBE (no test counts that key), until the broker refuses it.
 */
import type { Kafka } from "kafkajs";
import { waitFor } from "../integration/workers/harness";

/** The key of the records that probe a topic's size limit: never a letter or a user. */
export const LIMIT_PROBE = "limit-probe";

export async function limitApplied(k: Kafka, topic: string, bytes: number, timeoutMs = 60_000): Promise<void> {
  const producer = k.producer({ retry: { retries: 0 } });
  await producer.connect();
  try {
    await waitFor(
      `max.message.bytes ${bytes} applied to ${topic}`,
      async () => {
        try {
          await producer.send({
            topic,
            acks: -1,
            messages: [{ key: LIMIT_PROBE, value: Buffer.alloc(bytes + 1024, 0x62) }],
          });
          return undefined;
        } catch (e) {
          return /larger than the max message size/i.test(String(e)) ? true : undefined;
        }
      },
      timeoutMs,
      250,
    );
  } finally {
    await producer.disconnect();
  }
}
