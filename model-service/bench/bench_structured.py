"""What structured outputs cost: 16 concurrent streams, half of them constrained by a JSON schema,
against the same 16 streams unconstrained, on one model-service; then the constraint's own work
per token (mask + advance) measured in-process.

Every stream runs to about `max_tokens`: the schema's list is unbounded, so a constrained stream ends only
when the budget makes the grammar close it (engine/json_closing.py), a token or two before the end; both
runs generate the same number of tokens within that. The closing's own cost is part of the constrained run,
and the in-process probe measures the constraint work with and without the budget. The two runs alternate
(`--repeats`, fastest kept), as in bench_serving.py, since the machine is shared.

    ../.venv/bin/python bench/bench_structured.py              # from model-service/
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

import httpx
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_serving import DEFAULT_MODEL, one_stream, start_ours  # noqa: E402

# An unbounded list: every constrained stream runs until the budget closes it, like the unconstrained ones.
SCHEMA = {"type": "object", "properties": {"scenes": {"type": "array", "items": {
    "type": "object", "properties": {"place": {"type": "string"}, "mood": {"enum": ["calm", "tense", "sad"]},
                                     "length": {"type": "integer", "minimum": 1, "maximum": 100}},
    "required": ["place", "mood", "length"]}}}, "required": ["scenes"]}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "story", "schema": SCHEMA, "strict": True}}


async def run_level(url: str, n: int, constrained: int, max_tokens: int) -> tuple[float, int, int]:
    """(wall seconds, completion tokens, streams that ended before max_tokens or failed)."""
    limits = httpx.Limits(max_connections=n + 4, max_keepalive_connections=n + 4)
    async with httpx.AsyncClient(timeout=httpx.Timeout(900, connect=30), limits=limits) as client:
        t0 = time.perf_counter()
        results = await asyncio.gather(*(one_stream(client, url, i, max_tokens, None, t0,
                                                    {"response_format": RESPONSE_FORMAT} if i % 2 and i < 2 * constrained
                                                    else None) for i in range(n)))
        wall = time.perf_counter() - t0
    # a closed document may end up to SLACK + 1 tokens before the budget
    bad = sum(1 for r in results if r.error or r.completion_tokens < max_tokens - 2)
    return wall, sum(r.completion_tokens for r in results), bad


def constraint_overhead(model_path: Path, rows: int, constrained: int, steps: int,
                        budget: int | None = None) -> tuple[float, float]:
    """Seconds per decoding step spent on constraints (mask every constrained row of a `rows`-row batch,
    advance each by its token), and per constrained token. Tokens are the argmax of random logits under
    the mask, so the parsers walk through real states of the schema. With `budget`, each constraint must
    finish within it (GrammarConstraint.within): the last steps include the closing's look ahead."""
    from transformers import AutoTokenizer

    from model_service.engine.constraints import apply_constraints
    from model_service.engine.grammar import GrammarCompiler

    tokenizer = AutoTokenizer.from_pretrained(model_path)
    grammars = GrammarCompiler(tokenizer)
    constraints = [grammars.json_schema_constraint(SCHEMA) for _ in range(constrained)]
    if budget is not None:
        constraints = [c.within(budget) for c in constraints]
    per_row = constraints + [None] * (rows - constrained)
    vocab = len(tokenizer)
    generator = torch.Generator().manual_seed(0)
    spent = 0.0
    for _ in range(steps):
        logits = torch.randn(rows, vocab, generator=generator)
        t0 = time.perf_counter()
        live = [c if c is not None and not c.is_terminated() else None for c in per_row]  # a closed one is done
        apply_constraints(logits, live)
        tokens = logits.argmax(dim=-1).tolist()
        for constraint, token in zip(live, tokens):
            if constraint is not None:
                constraint.accept(token)
        spent += time.perf_counter() - t0
    return spent / steps, spent / steps / constrained


async def main_async(args) -> int:
    log_dir = Path(tempfile.mkdtemp(prefix="bench-structured-"))
    print(f"logs: {log_dir}")
    server = start_ours(args.model_path, log_dir, args.streams, [])
    try:
        await server.wait_ready(300)
        url = server.base_url + "/v1/chat/completions"
        await run_level(url, 2, 1, 8)  # warm-up, and the schema compiled once (the compiler's cache)
        runs: dict[str, list[tuple[float, int, int]]] = {"unconstrained": [], "half constrained": []}
        for _ in range(args.repeats):
            runs["unconstrained"].append(await run_level(url, args.streams, 0, args.max_tokens))
            runs["half constrained"].append(await run_level(url, args.streams, args.streams // 2, args.max_tokens))
    finally:
        server.stop()
    best = {name: max(r, key=lambda x: x[1] / x[0]) for name, r in runs.items()}
    rate = {name: tokens / wall for name, (wall, tokens, _) in best.items()}
    step_s, token_s = constraint_overhead(args.model_path, args.streams, args.streams // 2, args.steps)
    # the same steps as the end of a budget: every one of them inside the closing window
    close_s, close_token_s = constraint_overhead(args.model_path, args.streams, args.streams // 2, args.steps,
                                                 budget=args.steps)
    step_time = args.streams / rate["unconstrained"]  # one decoding step of the whole batch
    print(f"\n{args.streams} streams x {args.max_tokens} tokens, greedy, best of {args.repeats}:")
    print("| run | tok/s | wall s | short/err | all runs tok/s |")
    print("|---|---:|---:|---:|---|")
    for name, (wall, tokens, bad) in best.items():
        every = ", ".join(f"{t / w:.1f}" for w, t, _ in runs[name])
        print(f"| {name} | {rate[name]:.1f} | {wall:.1f} | {bad} | {every} |")
    print(f"\nhalf constrained / unconstrained: {rate['half constrained'] / rate['unconstrained']:.3f}x "
          f"({(1 - rate['half constrained'] / rate['unconstrained']) * 100:.1f}% loss; target under 10%)")
    print(f"constraint work per decoding step ({args.streams // 2} of {args.streams} rows constrained, "
          f"{args.steps} steps, in-process): {step_s * 1e3:.2f} ms = {step_s / step_time * 100:.1f}% of a "
          f"{step_time * 1e3:.0f} ms step; {token_s * 1e6:.0f} us per constrained token")
    print(f"the same with a budget of {args.steps} (the last 96 steps look ahead to close): {close_s * 1e3:.2f} ms = "
          f"{close_s / step_time * 100:.1f}% of the step; {close_token_s * 1e6:.0f} us per constrained token")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, default=DEFAULT_MODEL)
    parser.add_argument("--streams", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200, help="decoding steps of the in-process overhead probe")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
