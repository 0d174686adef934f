"""The gateway benchmark's own parts (java-gateway/bench/) against each other: the synthetic
upstream really streams numbered, timestamped events with usage and [DONE], and the load
client counts them without loss. Guards the benchmark's numbers; asserts no timings."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "java-gateway" / "bench"
sys.path.insert(0, str(BENCH))

import sse_load  # noqa: E402


@pytest.fixture(scope="module")
def upstream_url():
    process = subprocess.Popen(
        [sys.executable, "-u", str(BENCH / "synthetic_upstream.py"), "--port", "0", "--events-per-second", "1000"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_concurrent_streams_arrive_complete_and_in_order(upstream_url):
    result = asyncio.run(sse_load.run_streams(upstream_url, streams=8, events=25, ramp_s=0.05))
    assert result["events_received"] == 8 * 25
    assert result["lost"] == result["reordered"] == result["duplicated"] == 0
    assert result["streams_ok"] == 8 and result["usage_chunks"] == 8
    assert result["latency_ms_p50"] >= 0 and result["ttft_ms_p50"] > 0


def test_tcp_forwarder_relays_streams_unchanged(upstream_url):
    port = upstream_url.rsplit(":", 1)[1]
    process = subprocess.Popen(
        [sys.executable, "-u", str(BENCH / "tcp_forwarder.py"), "--port", "0", "--target-port", port],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("PORT "), line
        url = f"http://127.0.0.1:{int(line.split()[1])}"
        result = asyncio.run(sse_load.run_streams(url, streams=4, events=20, ramp_s=0.02))
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert result["events_received"] == 80 and result["streams_ok"] == 4
    assert result["lost"] == result["reordered"] == 0


def test_client_reports_http_errors_instead_of_events(upstream_url):
    result = asyncio.run(sse_load.run_streams(upstream_url + "/nowhere", streams=2, events=5, ramp_s=0))
    assert result["streams_ok"] == 0 and result["lost"] == 10
    assert any("HTTP 404" in e for e in result["errors"])


def test_chunked_decoder_reassembles_any_split():
    parts = [b"data: a\n\n", b"data: bbbb\n\n", b"x" * 300]
    wire = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    rng = random.Random(7)
    for _ in range(200):
        decoder, out, i = sse_load.ChunkedDecoder(), b"", 0
        while i < len(wire):
            step = rng.randint(1, 9)
            out += decoder.feed(wire[i : i + step])
            i += step
        assert out == b"".join(parts) and decoder.finished
