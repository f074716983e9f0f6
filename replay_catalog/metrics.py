"""Prometheus metrics of one app: callbacks, ingestion latency, GraphQL operations, outages.

Each app gets its own CollectorRegistry (tests build many apps in one process), and
every label has a bounded set of values, whatever clients send.
"""

import threading
import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.requests import Request
from starlette.responses import Response
from strawberry.extensions import SchemaExtension

import tencent

# The event types the catalog knows (Tencent's callback documentation); any other
# number a client sends is counted as "other", so it cannot grow the label set.
KNOWN_EVENT_TYPES = frozenset(
    {
        tencent.EVENT_PUSH_CUT_OFF,
        tencent.EVENT_PUSH_STARTED,
        tencent.EVENT_RECORDING_FILE,
        tencent.EVENT_SCREENSHOT,
    }
)
OTHER = "other"

OUTCOME_REFUSED = "refused"
OUTCOME_UNAVAILABLE = "unavailable"
OUTCOME_DUPLICATE = "duplicate"

# Operation names come from clients: keep them short and few.
MAX_OPERATION_NAME_LENGTH = 64
MAX_OPERATION_NAMES = 100
ANONYMOUS = "anonymous"

# Callbacks take a few milliseconds; a slow disk or a locked SQLite file takes seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def event_type_label(event_type: int | None) -> str:
    return str(event_type) if event_type in KNOWN_EVENT_TYPES else OTHER


class CatalogMetrics:
    """The metrics of one app, and the text page Prometheus scrapes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.subscriptions = Gauge(
            "replay_catalog_subscriptions",
            "GraphQL subscriptions open on this process.",
            registry=self.registry,
        )
        self.graphql_cache = Counter(
            "replay_catalog_graphql_cache",
            "GraphQL requests by what the response cache did (hit, miss, bypass).",
            ["result"],
            registry=self.registry,
        )
        self.callbacks = Counter(
            "replay_catalog_callbacks",
            "Tencent callbacks received, by event type and outcome.",
            ["event_type", "outcome"],
            registry=self.registry,
        )
        self.ingestion_seconds = Histogram(
            "replay_catalog_ingestion_seconds",
            "Time to store and apply one authentic callback.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.graphql_operations = Counter(
            "replay_catalog_graphql_operations",
            "GraphQL operations, by operation name and outcome (ok, error).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.graphql_seconds = Histogram(
            "replay_catalog_graphql_operation_seconds",
            "Time to answer one GraphQL operation, by operation name.",
            ["operation"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.database_errors = Counter(
            "replay_catalog_database_errors",
            "Times the database could not be reached or written.",
            registry=self.registry,
        )
        self._operation_names: set[str] = set()
        self._names_lock = threading.Lock()

    def cache_lookup(self, result: str) -> None:
        self.graphql_cache.labels(result).inc()

    def callback(self, event_type: int | None, outcome: str) -> None:
        self.callbacks.labels(event_type_label(event_type), outcome).inc()

    def ingested(self, event_type: int | None, outcome: str, seconds: float) -> None:
        self.callback(event_type, outcome)
        self.ingestion_seconds.observe(seconds)

    def database_error(self, failure: BaseException | None = None) -> None:
        self.database_errors.inc()

    def operation_label(self, name: str | None) -> str:
        """The label for a client's operation name: the first 100 distinct names, then "other"."""
        if not name:
            return ANONYMOUS
        name = name[:MAX_OPERATION_NAME_LENGTH]
        with self._names_lock:
            if name in self._operation_names:
                return name
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return OTHER
            self._operation_names.add(name)
            return name

    def graphql_operation(self, name: str | None, ok: bool, seconds: float) -> None:
        label = self.operation_label(name)
        self.graphql_operations.labels(label, "ok" if ok else "error").inc()
        self.graphql_seconds.labels(label).observe(seconds)

    def extension(self) -> Callable[[], SchemaExtension]:
        """A Strawberry extension factory that records every operation here."""
        return lambda: OperationMetrics(self)

    async def endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


class OperationMetrics(SchemaExtension):
    """Counts and times each GraphQL operation by its (bounded) name and outcome."""

    def __init__(self, metrics: CatalogMetrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except Exception:
            self._record(ok=False, started=started)
            raise
        context = self.execution_context
        failed = bool(context.pre_execution_errors) or bool(
            context.result is not None and context.result.errors
        )
        self._record(ok=not failed, started=started)

    def _record(self, ok: bool, started: float) -> None:
        try:
            name = self.execution_context.operation_name
        except Exception:  # an unparsable document has no name to read
            name = None
        self.metrics.graphql_operation(name, ok, time.perf_counter() - started)
