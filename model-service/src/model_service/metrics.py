"""Prometheus metrics of the model-service, in a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .engine.base import EngineListener

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class ServiceMetrics(EngineListener):
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("model_service_requests", "Chat completion requests by HTTP status",
                                ["status"], registry=r)
        self.prompt_tokens = Counter("model_service_prompt_tokens", "Prompt tokens processed", registry=r)
        self.completion_tokens = Counter("model_service_completion_tokens", "Completion tokens generated",
                                         registry=r)
        self.ttft = Histogram("model_service_time_to_first_token_seconds", "Arrival to first token",
                              buckets=_LATENCY_BUCKETS, registry=r)
        self.itl = Histogram("model_service_inter_token_latency_seconds", "Gap between a request's tokens",
                             buckets=_LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("model_service_queue_depth", "Requests waiting for a batch slot", registry=r)
        self.running = Gauge("model_service_running_batch_size", "Requests decoding in the batch", registry=r)
        self.cancelled = Counter("model_service_requests_cancelled", "Requests cancelled before finishing",
                                 registry=r)

    # EngineListener: called from the generation thread; prometheus_client is thread-safe.
    def on_step(self, running: int, waiting: int) -> None:
        self.running.set(running)
        self.queue_depth.set(waiting)

    def on_first_token(self, request_id: str, seconds: float) -> None:
        self.ttft.observe(seconds)

    def on_token_gap(self, seconds: float) -> None:
        self.itl.observe(seconds)

    def on_cancelled(self, request_id: str) -> None:
        self.cancelled.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
