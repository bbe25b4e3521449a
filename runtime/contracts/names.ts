/**
 * Names other parts of the system depend on: the topics, the Cassandra keyspace and tables.
 * The workers, the Spark job, the Pulumi outputs and the tests all import them from here,
 * so a rename is one change.
 */
export const USERS_TOPIC = "users_created";
export const DLQ_TOPIC = "users_created.dlq";
export const KEYSPACE = "spark_streams";
export const USERS_TABLE = "created_users";
export const AGGREGATES_TABLE = "users_by_country";
/** Schema Registry subject of the users_created value schema (TopicNameStrategy). */
export const USERS_VALUE_SUBJECT = `${USERS_TOPIC}-value`;
