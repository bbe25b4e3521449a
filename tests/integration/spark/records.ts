/** Known UserCreated records for the Spark tests and the benchmark, Avro-encoded as the relay does. */
import { randomUUID } from "node:crypto";
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import type { Kafka } from "kafkajs";
import type { UserCreated } from "../../../runtime/contracts/user-created";
import { userCreatedAvsc } from "../../../runtime/contracts/user-created";

export function user(country: string, gender: string, fetchedAt: number, i = 0): UserCreated {
  const id = randomUUID();
  return {
    id,
    first_name: `First${i}`,
    last_name: `Last${i}`,
    gender,
    address: `${i} Test Street, Testville, Teststate, ${country}`,
    country,
    post_code: String(10000 + i),
    email: `user${i}.${id.slice(0, 8)}@example.com`,
    username: `user${i}_${id.slice(0, 8)}`,
    dob: Date.UTC(1990, 0, 1) + i * 86_400_000,
    registered_date: Date.UTC(2015, 5, 1) + i * 3_600_000,
    phone: `(555) 010-${String(i % 10000).padStart(4, "0")}`,
    picture: `https://example.com/portraits/${i % 100}.jpg`,
    fetched_at: fetchedAt,
  };
}

/** Register the UserCreated schema under `<topic>-value`; returns the schema id. */
export async function registerFor(registry: SchemaRegistry, topic: string): Promise<number> {
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: userCreatedAvsc() },
    { subject: `${topic}-value` },
  );
  return id;
}

export async function createTopic(kafka: Kafka, topic: string, partitions = 2): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.createTopics({
      topics: [{ topic, numPartitions: partitions, replicationFactor: 1 }],
      waitForLeaders: true,
    });
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopic(kafka: Kafka, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics: [topic] });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect();
  }
}

/** Produce users keyed by id, Confluent wire format; plus raw extra values (e.g. garbage). */
export async function produceUsers(
  kafka: Kafka,
  registry: SchemaRegistry,
  schemaId: number,
  topic: string,
  users: UserCreated[],
  raw: Buffer[] = [],
  chunk = 2000,
): Promise<void> {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let i = 0; i < users.length; i += chunk) {
      const part = users.slice(i, i + chunk);
      const messages = await Promise.all(
        part.map(async (u) => ({ key: u.id, value: await registry.encode(schemaId, u) })),
      );
      await producer.send({ topic, acks: -1, messages });
    }
    if (raw.length)
      await producer.send({ topic, acks: -1, messages: raw.map((value, i) => ({ key: `raw-${i}`, value })) });
  } finally {
    await producer.disconnect();
  }
}
