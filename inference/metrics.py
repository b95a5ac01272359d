"""Prometheus metrics, in a registry of the app's own (two apps in one process never collide).

Only `ObservabilityMiddleware` feeds them, once per request, from the request's context:
metrics sit around the call instead of being sprinkled through the endpoints.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from contract.metadata import ModelMetadata

# Seconds. A scored request takes about a millisecond; the tail buckets catch the slow ones.
REQUEST_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
MODEL_BUCKETS = (0.00001, 0.00002, 0.00005, 0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1)
SCORE_BUCKETS = tuple(round(i / 20, 2) for i in range(1, 21))
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        ProcessCollector(registry=registry)  # memory, CPU, open files of this worker
        self.requests = Counter(
            "http_requests",
            "Requests by endpoint, method and status (health and metrics excluded)",
            ["endpoint", "method", "status"],
            registry=registry,
        )
        self.request_latency = Histogram(
            "http_request_duration_seconds",
            "Time from request to response start, by endpoint",
            ["endpoint"],
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.model_latency = Histogram(
            "model_inference_duration_seconds",
            "Time inside the model call only (encoding excluded)",
            ["model_version", "endpoint"],
            buckets=MODEL_BUCKETS,
            registry=registry,
        )
        self.batch_size = Histogram(
            "prediction_batch_size",
            "Applicants per scoring call",
            ["model_version", "endpoint"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.decisions = Counter(
            "predictions",
            "Scored applicants by decision",
            ["model_version", "decision"],
            registry=registry,
        )
        self.scores = Histogram(
            "prediction_probability",
            "Distribution of the predicted default probability",
            ["model_version"],
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        # The decision record (inference/decisions): every record written, shipped or dropped is counted.
        self.records_written = Counter(
            "decision_records_written",
            "Decision records appended to the local segment files",
            registry=registry,
        )
        self.records_dropped = Counter(
            "decision_records_dropped",
            "Decision records lost, by reason: write_failed (local folder unwritable or full), "
            "buffer_full (database away too long), unreadable (damaged line), rejected (refused by the database)",
            ["reason"],
            registry=registry,
        )
        self.records_shipped = Counter(
            "decision_records_shipped",
            "Decision records inserted into PostgreSQL (replays that were already there excluded)",
            registry=registry,
        )
        self.ship_failures = Counter(
            "decision_ship_failures",
            "Failed attempts to reach or write to PostgreSQL (the records wait in the local buffer)",
            registry=registry,
        )
        self.buffer_bytes = Gauge(
            "decision_buffer_bytes",
            "Bytes of decision records in the local buffer not yet shipped to PostgreSQL",
            registry=registry,
        )
        self.key_failures = Counter(
            "api_key_failures",
            "Scoring calls with a missing or invalid API key",
            registry=registry,
        )
        self.key_throttled = Counter(
            "api_key_throttled",
            "Calls refused with 429 because their address sent too many invalid keys",
            registry=registry,
        )
        self.challenger_failures = Counter(
            "challenger_failures",
            "Scoring calls the challenger failed on (the champion answered them)",
            registry=registry,
        )
        self.model_info = Gauge(
            "model_info",
            "The served model (value 1)",
            ["model_name", "model_version", "threshold"],
            registry=registry,
        )
        self._request_children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._score_children: dict[tuple[str, str], tuple[Histogram, Histogram, Counter, Counter, Histogram]] = {}

    def set_model(self, metadata: ModelMetadata) -> None:
        self.model_info.clear()
        self.model_info.labels(metadata.model_name, metadata.model_version, repr(metadata.threshold)).set(1)

    def observe_request(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        key = (endpoint, method, status)
        children = self._request_children.get(key)
        if children is None:  # resolve label children once per combination, not per request
            children = (self.requests.labels(endpoint, method, str(status)), self.request_latency.labels(endpoint))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_scores(
        self, model_version: str, endpoint: str, seconds: float, probabilities: list[float], predictions: list[int]
    ) -> None:
        key = (model_version, endpoint)
        children = self._score_children.get(key)
        if children is None:
            children = (
                self.model_latency.labels(model_version, endpoint),
                self.batch_size.labels(model_version, endpoint),
                self.decisions.labels(model_version, "accepted"),
                self.decisions.labels(model_version, "refused"),
                self.scores.labels(model_version),
            )
            self._score_children[key] = children
        model_latency, batch_size, accepted, refused, scores = children
        model_latency.observe(seconds)
        batch_size.observe(len(predictions))
        n_refused = sum(predictions)
        if n_refused:
            refused.inc(n_refused)
        if n_refused < len(predictions):
            accepted.inc(len(predictions) - n_refused)
        for probability in probabilities:
            scores.observe(probability)

    def render(self) -> bytes:
        return generate_latest(self.registry)
