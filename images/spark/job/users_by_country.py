"""Spark Structured Streaming job: users per country and gender per minute of event time.

Reads topic users_created (Confluent wire format: magic byte 0, 4-byte schema id, Avro body),
decodes the value with the registered schema (runtime/contracts/user-created.avsc), takes
fetched_at as event time with a watermark, counts users in tumbling windows by country and
gender, and upserts the counts into Cassandra spark_streams.users_by_country.

Idempotent by window key: the table's primary key is ((country), window_start, gender) and the
output mode is "update", so each micro-batch writes the window's *total* so far; a replayed batch
writes the same totals again. Progress (Kafka offsets, dedupe and window state) lives in the checkpoint.

Each user is counted once per (id, fetched_at): the topic is at-least-once (a relay resend, an audit
re-drive of the same version, a replay), so copies are dropped before counting (see aggregates()).

Configuration (environment, same names as the TypeScript workers where they overlap):
  KAFKA_BROKERS               comma list host:port (required)
  CASSANDRA_CONTACT_POINTS    comma list host[:port] (required)
  CASSANDRA_USER, CASSANDRA_PASSWORD, CASSANDRA_LOCAL_DC, CASSANDRA_REPLICATION_FACTOR
  CASSANDRA_CONSISTENCY       consistency of the writes (default LOCAL_QUORUM, as the processor)
  USER_CREATED_AVSC           path of the Avro schema file (default: next to this file)
  SPARK_TOPIC                 source topic (default users_created)
  SPARK_KEYSPACE / SPARK_AGG_TABLE   target (default spark_streams / users_by_country)
  SPARK_CHECKPOINT_DIR        checkpoint location (required; a volume in the stacks; the job uses a subdirectory)
  SPARK_STARTING_OFFSETS      earliest|latest for a new checkpoint (default earliest)
  SPARK_WINDOW, SPARK_WATERMARK, SPARK_TRIGGER  ("1 minute", "10 minutes", "5 seconds")
  SPARK_MAX_OFFSETS_PER_TRIGGER  optional bound of one micro-batch
  PUSHGATEWAY_URL             optional: each batch's progress (offsets behind, rates) is pushed there
                              (progress_metrics.py)
Flags: --available-now  process what the topic holds, then stop (benchmarks, backfills).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.avro.functions import from_avro

LOG = logging.getLogger("users_by_country")

# Names shared with runtime/contracts/names.ts (the TypeScript side imports them from there).
DEFAULT_TOPIC = "users_created"
DEFAULT_KEYSPACE = "spark_streams"
DEFAULT_TABLE = "users_by_country"
CATALOG = "cass"
WIRE_HEADER_BYTES = 5  # Confluent wire format: magic byte 0 + 4-byte big-endian schema id
# Spark cannot resume a checkpoint whose stateful operators differ from the plan's: a plan that changes them
# gets a new subdirectory of SPARK_CHECKPOINT_DIR (a replay from SPARK_STARTING_OFFSETS), not a crash loop.
CHECKPOINT_LAYOUT = "dedup-v2"


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise SystemExit(f"users_by_country: environment variable {name} is required")
    return value


def cassandra_hosts(contact_points: str) -> tuple[str, str]:
    """'h1:9042,h2:9042' -> ('h1,h2', '9042'). The connector takes one port for all hosts."""
    hosts, port = [], "9042"
    for item in contact_points.split(","):
        item = item.strip()
        if not item:
            continue
        host, sep, p = item.rpartition(":")
        if sep and p.isdigit():
            hosts.append(host)
            port = p
        else:
            hosts.append(item)
    if not hosts:
        raise SystemExit("users_by_country: CASSANDRA_CONTACT_POINTS is empty")
    return ",".join(hosts), port


def build_session() -> SparkSession:
    hosts, port = cassandra_hosts(env("CASSANDRA_CONTACT_POINTS"))
    builder = (
        SparkSession.builder.appName("users_by_country")
        .config("spark.sql.shuffle.partitions", os.environ.get("SPARK_SHUFFLE_PARTITIONS", "2"))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.cassandra.connection.host", hosts)
        .config("spark.cassandra.connection.port", port)
        .config(f"spark.sql.catalog.{CATALOG}", "com.datastax.spark.connector.datasource.CassandraCatalog")
        .config("spark.sql.extensions", "com.datastax.spark.connector.CassandraSparkExtensions")
        # A majority of the DC's replicas acknowledge each write: one node down loses none.
        .config("spark.cassandra.output.consistency.level", os.environ.get("CASSANDRA_CONSISTENCY") or "LOCAL_QUORUM")
    )
    if os.environ.get("CASSANDRA_LOCAL_DC"):
        builder = builder.config("spark.cassandra.connection.localDC", os.environ["CASSANDRA_LOCAL_DC"])
    if os.environ.get("CASSANDRA_USER"):
        builder = builder.config("spark.cassandra.auth.username", os.environ["CASSANDRA_USER"])
        builder = builder.config("spark.cassandra.auth.password", env("CASSANDRA_PASSWORD"))
    return builder.getOrCreate()


def ensure_table(spark: SparkSession, keyspace: str, table: str) -> None:
    """Create the keyspace and the aggregates table if absent (through the connector's catalog)."""
    rf = os.environ.get("CASSANDRA_REPLICATION_FACTOR", "1")
    dc = os.environ.get("CASSANDRA_LOCAL_DC")
    # Replicas per data center by name (as the processor's keyspace); SimpleStrategy only when no DC is named.
    replication = f"class='NetworkTopologyStrategy', {dc}='{rf}'" if dc else f"class='SimpleStrategy', replication_factor='{rf}'"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {CATALOG}.{keyspace} WITH DBPROPERTIES ({replication})")
    spark.sql(
        f"CREATE TABLE IF NOT EXISTS {CATALOG}.{keyspace}.{table} ("
        " country STRING, window_start TIMESTAMP, gender STRING,"
        " window_end TIMESTAMP, users BIGINT, updated_at TIMESTAMP)"
        " USING cassandra PARTITIONED BY (country)"
        " TBLPROPERTIES (clustering_key='window_start.asc,gender.asc')"
    )


def aggregates(raw: DataFrame, schema_json: str, window: str, watermark: str) -> DataFrame:
    """Kafka rows -> (window_start, window_end, country, gender, users), each (id, fetched_at) once."""
    decoded = (
        raw.where(F.length("value") > WIRE_HEADER_BYTES)
        # Only Confluent-framed values (magic byte 0); anything else is the processor's DLQ business.
        .where(F.substring("value", 1, 1) == F.lit(bytes([0])))
        .select(
            from_avro(
                F.expr(f"substring(value, {WIRE_HEADER_BYTES + 1}, length(value) - {WIRE_HEADER_BYTES})"),
                schema_json,
                {"mode": "PERMISSIVE"},
            ).alias("u")
        )
        .where(F.col("u").isNotNull() & F.col("u.fetched_at").isNotNull())
        .select(
            F.col("u.id").alias("id"),
            F.col("u.fetched_at").alias("event_time"),
            F.col("u.country").alias("country"),
            F.col("u.gender").alias("gender"),
        )
    )
    return (
        decoded.withWatermark("event_time", watermark)
        # A copy of a record (same user id, same fetched_at) counts once. Keyed on the event time, the state is
        # evicted when the watermark passes it; a later copy is then late and dropped. Trade-offs: README.md.
        .dropDuplicates(["id", "event_time"])
        .groupBy(F.window("event_time", window), "country", "gender")
        .count()
        .select(
            F.col("country"),
            F.col("window.start").alias("window_start"),
            F.col("gender"),
            F.col("window.end").alias("window_end"),
            F.col("count").alias("users"),
        )
    )


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format='{"time":"%(asctime)s","level":"%(levelname)s","name":"%(name)s","msg":%(message)s}')
    LOG.setLevel(os.environ.get("LOG_LEVEL", "info").upper())
    available_now = "--available-now" in argv
    topic = os.environ.get("SPARK_TOPIC", DEFAULT_TOPIC)
    keyspace = os.environ.get("SPARK_KEYSPACE", DEFAULT_KEYSPACE)
    table = os.environ.get("SPARK_AGG_TABLE", DEFAULT_TABLE)
    schema_path = Path(os.environ.get("USER_CREATED_AVSC", Path(__file__).with_name("user-created.avsc")))
    schema_json = schema_path.read_text(encoding="utf-8")
    json.loads(schema_json)  # fail fast on a broken file

    spark = build_session()
    spark.sparkContext.setLogLevel(os.environ.get("SPARK_LOG_LEVEL", "WARN"))
    ensure_table(spark, keyspace, table)

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", env("KAFKA_BROKERS"))
        .option("subscribe", topic)
        .option("startingOffsets", os.environ.get("SPARK_STARTING_OFFSETS", "earliest"))
        .option("failOnDataLoss", "false")
    )
    if os.environ.get("SPARK_MAX_OFFSETS_PER_TRIGGER"):
        reader = reader.option("maxOffsetsPerTrigger", os.environ["SPARK_MAX_OFFSETS_PER_TRIGGER"])
    counts = aggregates(
        reader.load(),
        schema_json,
        os.environ.get("SPARK_WINDOW", "1 minute"),
        os.environ.get("SPARK_WATERMARK", "10 minutes"),
    )

    def upsert(batch: DataFrame, batch_id: int) -> None:
        started = time.monotonic()
        rows = batch.withColumn("updated_at", F.current_timestamp())
        rows.persist()
        n = rows.count()
        if n:
            (rows.write.format("org.apache.spark.sql.cassandra")
             .options(keyspace=keyspace, table=table)
             .mode("append")  # Cassandra writes are upserts by primary key
             .save())
        rows.unpersist()
        LOG.info(json.dumps({"event": "batch", "batch_id": batch_id, "windows_upserted": n,
                             "ms": round((time.monotonic() - started) * 1000)}))

    writer = (
        counts.writeStream.outputMode("update")
        .foreachBatch(upsert)
        .option("checkpointLocation", f"{env('SPARK_CHECKPOINT_DIR').rstrip('/')}/{CHECKPOINT_LAYOUT}")
        .queryName("users_by_country")
    )
    writer = writer.trigger(availableNow=True) if available_now else writer.trigger(
        processingTime=os.environ.get("SPARK_TRIGGER", "5 seconds"))
    if os.environ.get("PUSHGATEWAY_URL"):
        # the module beside this file, from wherever the job is started
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from progress_metrics import listener
        spark.streams.addListener(listener(os.environ["PUSHGATEWAY_URL"]))
    query = writer.start()
    LOG.info(json.dumps({"event": "started", "topic": topic, "table": f"{keyspace}.{table}",
                         "available_now": available_now}))
    query.awaitTermination()
    progress = query.recentProgress or []
    LOG.info(json.dumps({
        "event": "stopped",
        "last_batch": progress[-1]["batchId"] if progress else None,
        # totals over the recent progress reports (all batches of a short --available-now run)
        "input_rows": sum(p.get("numInputRows", 0) for p in progress),
        "trigger_ms": sum(p.get("durationMs", {}).get("triggerExecution", 0) for p in progress),
        "batches": [[p.get("numInputRows", 0), p.get("durationMs", {}).get("triggerExecution", 0)] for p in progress],
    }))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
