"""How fast a non-stream client that hangs up stops the model, through the real gateway.

    .venv/bin/python java-gateway/bench/nonstream_cancel.py [--runs 10]

Starts the real model-service (small model) and the gateway jar, then per run: sends a non-stream
request on a raw socket, waits until the model has generated a few tokens for it, closes the socket and
times (a) until the gateway cancelled its upstream call (gateway_streams_active back to 0), (b) until the
model-service counts the request as cancelled and (c) until its batch is empty.
Prints each run and the median; results go in docs/benchmarks-gateway.md.
"""
from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from stack import free_port, metric_value, start_gateway, start_model_service  # noqa: E402

PROMPT = [{"role": "user", "content": "Write a very long story about a dragon who learns to bake bread."}]


def metric(url: str, name: str) -> float:
    return metric_value(httpx.get(url + "/metrics").text, name)


def poll(predicate, timeout_s: float = 60) -> float:
    start = time.perf_counter()
    while not predicate():
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)
    return time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with start_model_service(free_port()) as model, start_gateway(free_port(), [model.url]) as gateway:
        body = json.dumps({"messages": PROMPT, "max_tokens": 2000}).encode()
        to_gateway, to_cancel, to_empty = [], [], []
        gateway_active = lambda: metric_value(httpx.get(gateway.url + "/actuator/prometheus").text,
                                              "gateway_streams_active")
        for run in range(args.runs):
            cancelled = metric(model.url, "model_service_requests_cancelled_total")
            tokens = metric(model.url, "model_service_inter_token_latency_seconds_count")
            client = socket.create_connection(("127.0.0.1", gateway.port))
            client.sendall(f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                           f"{gateway.api_key}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
                           f"\r\n\r\n".encode() + body)
            poll(lambda: metric(model.url, "model_service_inter_token_latency_seconds_count") >= tokens + 5)
            closed = time.perf_counter()
            client.close()
            released = poll(lambda: gateway_active() == 0)
            seen = poll(lambda: metric(model.url, "model_service_requests_cancelled_total") > cancelled)
            empty = poll(lambda: metric(model.url, "model_service_running_batch_size") == 0)
            to_gateway.append(released - closed)
            to_cancel.append(seen - closed)
            to_empty.append(empty - closed)
            print(f"run {run + 1}: gateway cancelled upstream after {1000 * (released - closed):.0f} ms, model "
                  f"cancelled after {1000 * (seen - closed):.0f} ms, batch empty after "
                  f"{1000 * (empty - closed):.0f} ms", flush=True)
        print(f"median over {args.runs} runs: gateway cancelled upstream after "
              f"{1000 * statistics.median(to_gateway):.0f} ms (max {1000 * max(to_gateway):.0f}), model cancelled after {1000 * statistics.median(to_cancel):.0f} ms "
              f"(max {1000 * max(to_cancel):.0f}), batch empty after {1000 * statistics.median(to_empty):.0f} ms "
              f"(max {1000 * max(to_empty):.0f})")


if __name__ == "__main__":
    main()
