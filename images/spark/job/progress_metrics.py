"""The streaming query's progress as Prometheus series, pushed to the Pushgateway after each batch.

Spark keeps the query's Kafka offsets in its checkpoint, not in a consumer group, so no lag exporter
sees how far it is behind; its progress reports do (the Kafka source's offsetsBehindLatest). The
listener pushes, after each micro-batch, to PUSHGATEWAY_URL under job "spark-query" and the query's
name (PUT: the group holds the latest report only):

  spark_query_offsets_behind_latest{query, source, stat="min|avg|max"}   records behind the topic's end
  spark_query_input_rows_per_second{query}, spark_query_processed_rows_per_second{query}
  spark_query_batch_id{query}, spark_query_last_progress_timestamp_seconds{query}

A failed push is the gateway's or the network's problem: logged, and the query goes on.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
import urllib.request
from typing import Any, Iterable

LOG = logging.getLogger("users_by_country.progress")

JOB = "spark-query"
STATS = ("min", "avg", "max")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: Any) -> float | None:
    try:
        n = float(value)
    except (TypeError, ValueError):
        return None
    return n if n == n else None  # NaN: Spark reports it for a batch that read nothing


def render(query: str, batch_id: int, input_rps: Any, processed_rps: Any,
           sources: Iterable[tuple[str, dict[str, str]]], now: float | None = None) -> str:
    """Prometheus text format of one progress report; sources: (description, metrics) pairs."""
    q = _label(query)
    lines: list[str] = []

    def gauge(name: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        if not samples:
            return
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.extend(f"{name}{{{labels}}} {value:g}" for labels, value in samples)

    behind: list[tuple[str, float]] = []
    for description, metrics in sources:
        for stat in STATS:
            v = _num((metrics or {}).get(f"{stat}OffsetsBehindLatest"))
            if v is not None:
                behind.append((f'query="{q}",source="{_label(description)}",stat="{stat}"', v))
    gauge("spark_query_offsets_behind_latest", "Records the query is behind the end of its source (Kafka)", behind)
    for name, value, help_text in (
        ("spark_query_input_rows_per_second", input_rps, "Rows per second arriving in the last batch"),
        ("spark_query_processed_rows_per_second", processed_rps, "Rows per second the last batch processed"),
        ("spark_query_batch_id", batch_id, "The last micro-batch's id"),
        ("spark_query_last_progress_timestamp_seconds", now if now is not None else time.time(),
         "When the query last reported progress (Unix seconds)"),
    ):
        v = _num(value)
        gauge(name, help_text, [(f'query="{q}"', v)] if v is not None else [])
    return "\n".join(lines) + "\n"


def push(url: str, query: str, body: str, timeout: float = 5.0) -> bool:
    """PUT the body as the query's group; True when the gateway took it. Never raises."""
    target = f"{url.rstrip('/')}/metrics/job/{JOB}/query/{urllib.parse.quote(query, safe='')}"
    request = urllib.request.Request(target, data=body.encode(), method="PUT",
                                     headers={"Content-Type": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return 200 <= response.status < 300
    except Exception as err:  # noqa: BLE001 - any failure of the push leaves the query running
        LOG.warning(json.dumps({"event": "progress_not_pushed", "pushgateway": url, "error": str(err)}))
        return False


def listener(url: str):
    """A StreamingQueryListener that pushes each progress report (pyspark imported here: tests need none)."""
    from pyspark.sql.streaming import StreamingQueryListener

    class ProgressPusher(StreamingQueryListener):
        def onQueryStarted(self, event) -> None:  # noqa: N802 - Spark's names
            pass

        def onQueryProgress(self, event) -> None:  # noqa: N802
            p = event.progress
            body = render(p.name or str(p.id), p.batchId, p.inputRowsPerSecond, p.processedRowsPerSecond,
                          [(s.description, s.metrics) for s in p.sources])
            push(url, p.name or str(p.id), body)

        def onQueryIdle(self, event) -> None:  # noqa: N802
            pass

        def onQueryTerminated(self, event) -> None:  # noqa: N802
            pass

    return ProgressPusher()
