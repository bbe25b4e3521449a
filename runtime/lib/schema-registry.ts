/** The Schema Registry client and the registration of the UserCreated value schema. */
import { SchemaRegistry, SchemaType } from "@kafkajs/confluent-schema-registry";
import { USERS_VALUE_SUBJECT } from "../contracts/names";
import { userCreatedAvsc } from "../contracts/user-created";

export function createRegistry(url: string): SchemaRegistry {
  return new SchemaRegistry({ host: url });
}

/** Register (idempotently) the users_created value schema; returns its id. */
export async function registerUserCreated(registry: SchemaRegistry): Promise<number> {
  const { id } = await registry.register(
    { type: SchemaType.AVRO, schema: userCreatedAvsc() },
    { subject: USERS_VALUE_SUBJECT },
  );
  return id;
}
