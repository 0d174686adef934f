"""What each MODEL_SERVICE_QUANTIZATION costs in quality and buys in speed, against fp32, one run.

Quality, for each setting against the exact fp32 lean runner (itself equal to transformers):
  - next-token agreement and perplexity, teacher-forced over tests/data/quality.txt (the text the
    tests keep, so a regression test and this table read the same numbers);
  - greedy agreement on a fixed prompt set: how many of N prompts give the same 64-token answer,
    and the mean share of answer tokens before the first difference.
Speed: one decoding step (batch of `rows`, 256 tokens of context) per setting, median of repeats,
as ratio to fp32 in the same run.

    python bench/bench_quality.py
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))
from model_service.engine.llama_runner import LlamaFamilyRunner  # noqa: E402
from model_service.engine.quantization import QUANTIZATIONS, cpu_flags  # noqa: E402

DEFAULT_MODEL = HERE.parents[1] / "models" / "smollm2-135m-instruct"
TEXT = (HERE.parent / "tests" / "data" / "quality.txt").read_text()
PROMPTS = ["What is the capital of France?", "Write a haiku about the sea.", "Count from 1 to 10.",
           "Explain what a database index is.", "Give me three tips for sleeping better.",
           "What is 12 times 7?", "Describe a cat to someone who has never seen one.",
           "Translate 'good morning' into Spanish and French."]


def forward_all(runner, ids):
    with torch.no_grad():
        return runner(input_ids=ids, attention_mask=torch.ones_like(ids),
                      position_ids=torch.arange(ids.shape[1]).unsqueeze(0), cache=DynamicCache(),
                      logits_to_keep=0).logits[0]


def greedy(runner, prompt: list[int], n: int) -> list[int]:
    cache = DynamicCache()
    ids = torch.tensor([prompt])
    out: list[int] = []
    with torch.no_grad():
        pos = torch.arange(len(prompt)).unsqueeze(0)
        mask = torch.ones_like(ids)
        for _ in range(n):
            logits = runner(input_ids=ids, attention_mask=mask, position_ids=pos, cache=cache).logits
            token = int(logits[0, -1].argmax())
            out.append(token)
            ids = torch.tensor([[token]])
            pos = pos[:, -1:] + 1
            mask = torch.cat([mask, torch.ones((1, 1), dtype=mask.dtype)], dim=1)
    return out


def step_ms(runner, config, rows: int, context: int, repeats: int) -> float:
    """Median time of one decoding step for `rows` sequences with `context` cached tokens."""
    kvh = config.num_key_value_heads
    d = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            cache = DynamicCache()
            for i in range(config.num_hidden_layers):
                cache.update(torch.randn(rows, kvh, context, d), torch.randn(rows, kvh, context, d), i)
            t = time.perf_counter()
            runner(input_ids=torch.zeros((rows, 1), dtype=torch.long),
                   attention_mask=torch.ones((rows, context + 1), dtype=torch.long),
                   position_ids=torch.full((rows, 1), context), cache=cache)
            times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-path", default=str(DEFAULT_MODEL))
    p.add_argument("--rows", default="1,16,64")
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--answer-tokens", type=int, default=64)
    args = p.parse_args()
    model = AutoModelForCausalLM.from_pretrained(args.model_path).eval()
    tok = AutoTokenizer.from_pretrained(args.model_path)
    flags = cpu_flags()
    simd = ", ".join(sorted(f for f in flags if f.startswith(("avx512", "amx", "avx_vnni", "avx2"))))
    print(f"{os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads, flags: {simd}; "
          f"load {os.getloadavg()[0]:.2f}")
    ids = tok(TEXT, return_tensors="pt")["input_ids"]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"]
               for q in PROMPTS]
    rows = [int(r) for r in args.rows.split(",")]
    runners = {q: LlamaFamilyRunner(model, q) for q in QUANTIZATIONS}
    ref_logits = forward_all(runners["none"], ids)
    ref_answers = [greedy(runners["none"], pr, args.answer_tokens) for pr in prompts]
    ref_ppl = torch.exp(F.cross_entropy(ref_logits[:-1], ids[0, 1:])).item()
    timings = {q: {r: step_ms(runners[q], model.config, r, 256, args.repeats) for r in rows} for q in QUANTIZATIONS}
    print(f"\n{ids.shape[1]} tokens of tests/data/quality.txt; {len(prompts)} prompts x {args.answer_tokens} greedy "
          f"tokens; step times: median of {args.repeats}, 256 cached tokens per row; load {os.getloadavg()[0]:.2f}\n")
    print("| quantization | next-token agreement | perplexity | same greedy answers | answer tokens before first "
          "difference | " + " | ".join(f"step ms @{r} (x fp32)" for r in rows) + " |")
    print("|---" * (5 + len(rows)) + "|")
    for q in QUANTIZATIONS:
        logits = ref_logits if q == "none" else forward_all(runners[q], ids)
        agree = (logits.argmax(-1) == ref_logits.argmax(-1)).float().mean().item()
        ppl = torch.exp(F.cross_entropy(logits[:-1], ids[0, 1:])).item()
        answers = ref_answers if q == "none" else [greedy(runners[q], pr, args.answer_tokens) for pr in prompts]
        same = sum(a == b for a, b in zip(answers, ref_answers))
        prefix = statistics.mean(next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), len(a)) / len(a)
                                 for a, b in zip(answers, ref_answers))
        cells = " | ".join(f"{timings[q][r]:.1f} ({timings['none'][r] / timings[q][r]:.2f}x)" for r in rows)
        print(f"| {q} | {agree:.1%} | {ppl:.2f} (fp32 {ref_ppl:.2f}) | {same}/{len(prompts)} | {prefix:.0%} | {cells} |")
    print(f"\nload {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
