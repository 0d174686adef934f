"""Prometheus metrics of the model-service, in a registry of their own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .engine.base import EngineListener, RequestTimings

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# vLLM's own buckets (vllm/v1/metrics/loggers.py), so its dashboards' histogram_quantile reads the same
_VLLM_TTFT_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
                      20.0, 40.0, 80.0, 160.0, 640.0, 2560.0)
_VLLM_ITL_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
                     40.0, 80.0)
_VLLM_REQUEST_BUCKETS = (0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0,
                         240.0, 480.0, 960.0, 1920.0, 7680.0)


class ServiceMetrics(EngineListener):
    """Our own series (model_service_*), and the request latency histograms under vLLM's names and label
    (vllm:*{model_name}), so dashboards and alerts written for vLLM read this service unchanged."""

    def __init__(self, model_name: str = "model") -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.model_name = model_name
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

        label = ["model_name"]
        self.vllm_ttft = Histogram("vllm:time_to_first_token_seconds", "Arrival to first token", label,
                                   buckets=_VLLM_TTFT_BUCKETS, registry=r)
        self.vllm_itl = Histogram("vllm:inter_token_latency_seconds", "Gap between a request's tokens", label,
                                  buckets=_VLLM_ITL_BUCKETS, registry=r)
        self.vllm_e2e = Histogram("vllm:e2e_request_latency_seconds", "Arrival to the last token", label,
                                  buckets=_VLLM_REQUEST_BUCKETS, registry=r)
        self.vllm_queue = Histogram("vllm:request_queue_time_seconds", "Waiting for a batch slot", label,
                                    buckets=_VLLM_REQUEST_BUCKETS, registry=r)
        self.vllm_prefill = Histogram("vllm:request_prefill_time_seconds", "Batch slot to first token", label,
                                      buckets=_VLLM_REQUEST_BUCKETS, registry=r)
        self.vllm_decode = Histogram("vllm:request_decode_time_seconds", "First token to the last", label,
                                     buckets=_VLLM_REQUEST_BUCKETS, registry=r)
        self.vllm_success = Counter("vllm:request_success", "Finished requests by finish reason",
                                    ["model_name", "finished_reason"], registry=r)

    # EngineListener: called from the generation thread; prometheus_client is thread-safe.
    def on_step(self, running: int, waiting: int) -> None:
        self.running.set(running)
        self.queue_depth.set(waiting)

    def on_first_token(self, request_id: str, seconds: float) -> None:
        self.ttft.observe(seconds)
        self.vllm_ttft.labels(self.model_name).observe(seconds)

    def on_token_gap(self, seconds: float) -> None:
        self.itl.observe(seconds)
        self.vllm_itl.labels(self.model_name).observe(seconds)

    def on_finished(self, request_id: str, timings: RequestTimings) -> None:
        name = self.model_name
        self.vllm_e2e.labels(name).observe(timings.e2e)
        self.vllm_queue.labels(name).observe(timings.queue)
        if timings.prefill or timings.decode:
            self.vllm_prefill.labels(name).observe(timings.prefill)
            self.vllm_decode.labels(name).observe(timings.decode)
        # vLLM's reasons: stop, length, abort (ours: cancelled and error are aborts)
        reason = timings.finish_reason if timings.finish_reason in ("stop", "length") else "abort"
        self.vllm_success.labels(name, reason).inc()

    def on_cancelled(self, request_id: str) -> None:
        self.cancelled.inc()

    def on_prefix_cache(self, queried_tokens: int, hit_tokens: int) -> None:
        self.prefix_cache_queries.inc(queried_tokens)
        self.prefix_cache_hits.inc(hit_tokens)

    def on_prefill(self, tokens: int) -> None:
        self.prefill_tokens.inc(tokens)

    def render(self) -> bytes:
        return generate_latest(self.registry)
