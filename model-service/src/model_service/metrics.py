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
        # Named as vLLM's (vllm:prefix_cache_queries / _hits): tokens looked up, tokens found.
        self.prefix_cache_queries = Counter("model_service_prefix_cache_queries",
                                            "Prompt tokens looked up in the prefix cache", registry=r)
        self.prefix_cache_hits = Counter("model_service_prefix_cache_hits",
                                         "Prompt tokens served from the prefix cache", registry=r)
        self.prefill_tokens = Counter("model_service_prefill_tokens", "Prompt tokens computed by prefill passes",
                                      registry=r)
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

    def on_prefix_cache(self, queried_tokens: int, hit_tokens: int) -> None:
        self.prefix_cache_queries.inc(queried_tokens)
        self.prefix_cache_hits.inc(hit_tokens)

    def on_prefill(self, tokens: int) -> None:
        self.prefill_tokens.inc(tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
