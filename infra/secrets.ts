/**
 * Every password and key of the stack, generated once per stack by @pulumi/random and kept in
 * its encrypted state. Each value leaves this component only wrapped in pulumi.secret, so any
 * env list or output built from it stays secret too (the engine marks random's results secret,
 * but the program must not rely on that: mocks and other targets do not).
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";

export class PipelineSecrets extends pulumi.ComponentResource {
  /** The pipeline's PostgreSQL role: owns its database, not a superuser. */
  readonly postgresPassword: pulumi.Output<string>;
  /** The server's superuser: only the roles job logs in with it; never an output. */
  readonly postgresAdminPassword: pulumi.Output<string>;
  /** Read-only role for other teams (SELECT on the pipeline's tables). */
  readonly postgresReaderPassword: pulumi.Output<string>;
  /** postgres_exporter's login (pipeline_monitor: pg_monitor only). */
  readonly postgresMonitorPassword: pulumi.Output<string>;
  readonly airflowDbPassword: pulumi.Output<string>;
  readonly airflowAdminPassword: pulumi.Output<string>;
  /** Fernet key: 32 random bytes, url-safe base64, as Airflow requires. */
  readonly airflowFernetKey: pulumi.Output<string>;
  readonly airflowWebserverSecretKey: pulumi.Output<string>;
  /** The pipeline's Cassandra role: reads and writes spark_streams, not a superuser. */
  readonly cassandraPassword: pulumi.Output<string>;
  /** The setup role (a superuser): keyspace and roles, by the auth job only; never an output. */
  readonly cassandraAdminPassword: pulumi.Output<string>;
  /** Read-only role for other teams (SELECT on spark_streams). */
  readonly cassandraReaderPassword: pulumi.Output<string>;
  /** Replaces the image's well-known cassandra/cassandra superuser password. */
  readonly cassandraDefaultPassword: pulumi.Output<string>;

  /** Each value is a child named `<name>-<value>`: its name is its identity in the state, so never renamed. */
  constructor(name: string, opts?: pulumi.ComponentResourceOptions) {
    super("realtime-pipeline:index:Secrets", name, {}, opts);
    // Letters and digits only: the values go into URLs, shell scripts and CQL without escaping.
    const password = (n: string) =>
      pulumi.secret(new random.RandomPassword(`${name}-${n}`, { length: 32, special: false }, { parent: this }).result);
    this.postgresPassword = password("postgres-password");
    this.postgresAdminPassword = password("postgres-admin-password");
    this.postgresReaderPassword = password("postgres-reader-password");
    this.postgresMonitorPassword = password("postgres-monitor-password");
    this.airflowDbPassword = password("airflow-db-password");
    this.airflowAdminPassword = password("airflow-admin-password");
    this.airflowWebserverSecretKey = password("airflow-webserver-secret-key");
    this.cassandraPassword = password("cassandra-password");
    this.cassandraAdminPassword = password("cassandra-admin-password");
    this.cassandraReaderPassword = password("cassandra-reader-password");
    this.cassandraDefaultPassword = password("cassandra-default-password");
    const fernet = new random.RandomId(`${name}-airflow-fernet-key`, { byteLength: 32 }, { parent: this });
    // RandomId's b64Url drops the padding; Fernet wants the full 44-character form.
    this.airflowFernetKey = pulumi.secret(fernet.b64Url.apply((k) => k.padEnd(Math.ceil(k.length / 4) * 4, "=")));
    this.registerOutputs({});
  }
}
