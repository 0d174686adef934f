"""Which dtype `MODEL_SERVICE_DTYPE=auto` means on this machine, read from the hardware, never assumed.

On CPU, bfloat16 halves the bytes read per step, but only CPUs with bf16 instructions
(`avx512_bf16`, `amx_bf16` in /proc/cpuinfo) compute it fast; elsewhere torch emulates it and a
step gets slower than fp32 (measured: docs/benchmarks-model-service.md). On CUDA: bfloat16 where
the GPU supports it, else float16.
"""

from __future__ import annotations

import torch

from .engine.quantization import cpu_flags

CPU_BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
_NAMED = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def select_dtype(setting: str, device: str, quantization: str = "none",
                 flags: set[str] | None = None, cuda_bf16: bool | None = None) -> torch.dtype:
    if quantization != "none":
        if setting not in ("auto", "float32"):
            raise ValueError(f"MODEL_SERVICE_QUANTIZATION={quantization} needs float32 weights "
                             f"(MODEL_SERVICE_DTYPE=auto or float32), not {setting}")
        return torch.float32
    if setting != "auto":
        return _NAMED[setting]
    if device == "cuda":
        supported = torch.cuda.is_bf16_supported() if cuda_bf16 is None else cuda_bf16
        return torch.bfloat16 if supported else torch.float16
    flags = cpu_flags() if flags is None else flags
    return torch.bfloat16 if CPU_BF16_FLAGS & flags else torch.float32
