"""Diagnostic: the model-service engine against a static `generate` batch, in ONE process, no HTTP.

Runs the two alternately (engine N, static N, engine N, ...) so that both see the same
machine load, and times every model forward pass, so the gap splits into "forward passes
are slower" and "time spent outside the forward pass" (scheduling, cache bookkeeping,
sampling, detokenising, handing outputs to the event loop).

    python bench/engine_probe.py --concurrency 16,32 --repeats 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "src"))

import torch  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from bench_serving import DEFAULT_MODEL, prompt_messages  # noqa: E402
from model_service.engine.base import GenerationRequest  # noqa: E402
from model_service.engine.base import EngineLimits  # noqa: E402
from model_service.engine.continuous import ContinuousBatchingEngine  # noqa: E402
from model_service.engine.sampling import SamplingParams  # noqa: E402


class ForwardTimer:
    """Wraps model.forward to add up the time spent inside it, per thread-agnostic window."""

    def __init__(self, model):
        self.model, self.inner = model, model.forward
        self.seconds, self.calls = 0.0, 0
        model.forward = self

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t
            self.calls += 1

    def reset(self):
        self.seconds, self.calls = 0.0, 0


async def run_engine(engine, tokenizer, n: int, max_tokens: int) -> tuple[float, int, list[float]]:
    streams = []
    t0 = time.perf_counter()
    ttfts: list[float] = []
    for i in range(n):
        ids = tokenizer.apply_chat_template(prompt_messages(i), add_generation_prompt=True, tokenize=True)
        ids = list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        streams.append(engine.submit(GenerationRequest(f"r{i}", ids, SamplingParams(max_tokens=max_tokens))))

    async def drain(s):
        last = None
        async for out in s:
            if last is None:
                ttfts.append(time.perf_counter() - t0)
            last = out
        return last.completion_tokens

    counts = await asyncio.gather(*(drain(s) for s in streams))
    return time.perf_counter() - t0, sum(counts), ttfts


def run_static(model, tokenizer, n: int, max_tokens: int) -> tuple[float, int, list[float]]:
    texts = [tokenizer.apply_chat_template(prompt_messages(i), add_generation_prompt=True, tokenize=False)
             for i in range(n)]
    enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    t0 = time.perf_counter()
    out = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    return time.perf_counter() - t0, (out.shape[1] - enc["input_ids"].shape[1]) * n, []


async def main_async(args) -> None:
    torch.set_grad_enabled(False)
    tokenizer = AutoTokenizer.from_pretrained(args.model_path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model_path, dtype=torch.float32).eval()
    timer = ForwardTimer(model)
    engines = {}
    for limit in (int(x) for x in args.prefill_limits.split(",")):
        engines[f"engine[{limit}]"] = ContinuousBatchingEngine(
            model, tokenizer, EngineLimits(max_batch_size=64, max_model_len=8192, max_prefill_tokens=limit))
        engines[f"engine[{limit}]"].start()
    kinds = [*engines, "static"] if not args.no_static else list(engines)
    levels = [int(x) for x in args.concurrency.split(",")]
    print(f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}", flush=True)
    for engine in engines.values():
        await run_engine(engine, tokenizer, 2, 4)
    run_static(model, tokenizer, 2, 4)
    rows: dict[tuple[str, int], list[tuple[float, float, int]]] = {}
    try:
        for rep in range(args.repeats):
            for n in levels:
                for kind in kinds:
                    timer.reset()
                    load = os.getloadavg()[0]
                    if kind in engines:
                        wall, tokens, ttfts = await run_engine(engines[kind], tokenizer, n, args.max_tokens)
                    else:
                        wall, tokens, ttfts = await asyncio.get_running_loop().run_in_executor(
                            None, run_static, model, tokenizer, n, args.max_tokens)
                    ttft = f"TTFT p50 {statistics.median(ttfts):.2f} s max {max(ttfts):.2f} s, " if ttfts else ""
                    rows.setdefault((kind, n), []).append((wall, timer.seconds, tokens))
                    print(f"rep {rep} {kind:>12} N={n:<3} {tokens / wall:6.1f} tok/s  wall {wall:6.1f} s  {ttft}"
                          f"forward {timer.seconds:6.1f} s in {timer.calls} calls "
                          f"({timer.seconds / max(1, timer.calls) * 1000:.1f} ms each), "
                          f"outside forward {wall - timer.seconds:5.1f} s, load1 {load:.1f}", flush=True)
    finally:
        for engine in engines.values():
            engine.shutdown()
    if "static" not in kinds:
        return
    print("\nratio engine/static tok/s per repeat (same process, back to back):")
    for kind in engines:
        for n in levels:
            e, s = rows[(kind, n)], rows[("static", n)]
            ratios = [(et / ew) / (st / sw) for (ew, _, et), (sw, _, st) in zip(e, s)]
            print(f"  {kind} N={n}: " + ", ".join(f"{r:.2f}" for r in ratios)
                  + f"  (median {statistics.median(ratios):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", default=str(DEFAULT_MODEL))
    parser.add_argument("--concurrency", default="16,32")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--prefill-limits", default="4096",
                        help="one engine per value of EngineLimits.max_prefill_tokens, e.g. 4096,256")
    parser.add_argument("--no-static", action="store_true", help="engines only")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
