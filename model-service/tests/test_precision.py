"""MODEL_SERVICE_DTYPE=auto reads the hardware: bf16 only where the CPU computes it natively."""

from __future__ import annotations

import pytest
import torch

from model_service.precision import select_dtype

AVX2_ONLY = {"avx2", "fma", "f16c"}  # this kind of machine: bf16 would be emulated, slower than fp32


@pytest.mark.parametrize(("flags", "expected"), [
    (AVX2_ONLY, torch.float32),
    (AVX2_ONLY | {"avx512f", "avx512_vnni"}, torch.float32),
    (AVX2_ONLY | {"avx512f", "avx512_bf16"}, torch.bfloat16),
    (AVX2_ONLY | {"amx_bf16", "amx_tile"}, torch.bfloat16),
    (set(), torch.float32),  # flags unreadable: the safe choice
])
def test_auto_on_cpu_follows_the_flags(flags, expected):
    assert select_dtype("auto", "cpu", flags=flags) == expected


def test_auto_on_cuda_is_bf16_where_supported_else_fp16():
    assert select_dtype("auto", "cuda", cuda_bf16=True) == torch.bfloat16
    assert select_dtype("auto", "cuda", cuda_bf16=False) == torch.float16


def test_an_explicit_dtype_wins_over_the_flags():
    assert select_dtype("bfloat16", "cpu", flags=AVX2_ONLY) == torch.bfloat16
    assert select_dtype("float32", "cpu", flags={"amx_bf16"}) == torch.float32


def test_int8_needs_fp32_weights():
    assert select_dtype("auto", "cpu", "int8", flags={"amx_bf16"}) == torch.float32
    with pytest.raises(ValueError, match="needs float32 weights"):
        select_dtype("bfloat16", "cpu", "int8")
