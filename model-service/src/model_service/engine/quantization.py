"""Weight quantization on CPU: the linear layers a runner calls, in the precision the settings chose.

`int8` is PyTorch's dynamic quantization (`torch.ops.quantized.linear_dynamic`, FBGEMM / oneDNN
kernels that ship with torch for x86): weights int8 per output channel, activations quantized
per call to 8 bits (7 with `reduce_range`, which FBGEMM needs on CPUs without VNNI). It reads a
quarter of the fp32 bytes per step and runs integer dot products; measured here 2.5-5x faster
than fp32 `F.linear` for SmolLM2's shapes on an AVX2-only CPU, where the weight-only kernels
(`_weight_int8pack_mm`, `_weight_int4pack_mm_for_cpu`) fall back to slow scalar loops and
bfloat16 has no hardware support (docs/benchmarks-model-service.md has the table).

One consequence, documented for operators: activations are scaled per call, so a row's numbers
depend slightly on the other rows in its batch (like most batched engines, vLLM's included,
outputs are not batch-invariant). `none` keeps exact fp32/bf16 arithmetic.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

Linear = Callable[[torch.Tensor], torch.Tensor]

QUANTIZATIONS = ("none", "int8", "int8-head")


def split_quantization(quantization: str) -> tuple[str, str]:
    """(the decoder layers' kernel, the LM head's kernel) a setting means. `int8-head` quantizes
    only the LM head: the largest single matmul of a small model (576 x 49152 in SmolLM2-135M,
    a fifth of its weights) and the one least hurt by int8, since it reads a normalised state
    and only the ranking of its outputs matters (measured: docs/benchmarks-model-service.md)."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"unknown quantization {quantization!r} (one of {', '.join(QUANTIZATIONS)})")
    return ("int8" if quantization == "int8" else "none"), ("none" if quantization == "none" else "int8")


def cpu_flags() -> set[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is not readable)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def has_vnni(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & flags)


class _Dense:
    __slots__ = ("weight", "bias")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        self.weight = weight.detach()
        self.bias = None if bias is None else bias.detach()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


# The batch size oneDNN lays the packed weights out for; any row count works with them (measured:
# hints of 16 and 64 give the same times from 1 to 64 rows, a hint of 1 is slower from 2 rows up).
_PACK_HINT = 64


class _PackedDense:
    """An fp32 matmul on weights packed once into oneDNN's blocked layout.

    `F.linear` on CPU hands a small-batch fp32 matmul to a GEMM that re-packs the whole weight
    matrix on every call: measured over SmolLM2-135M's 120 decoder matmuls, 31.7 ms at 1 row but
    59.8 ms at 4 and 73.5 ms at 16; packed once, 18.8, 24.3 and 44.4 ms
    (docs/benchmarks-model-service.md). Same fp32 arithmetic, another summation order (results
    differ from F.linear's by float rounding, ~1e-4 on logits)."""

    __slots__ = ("packed", "bias", "in_features", "out_features")

    def __init__(self, packed: torch.Tensor, bias: torch.Tensor | None, in_features: int, out_features: int):
        self.packed, self.bias = packed, bias
        self.in_features, self.out_features = in_features, out_features

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.mkldnn._linear_pointwise(x.reshape(-1, shape[-1]), self.packed, self.bias, "none", [], "")
        return y.view(*shape[:-1], self.out_features)


def _packable(weight: torch.Tensor) -> bool:
    return (weight.device.type == "cpu" and weight.dtype == torch.float32 and torch.backends.mkldnn.is_available()
            and hasattr(torch.ops.mkldnn, "_reorder_linear_weight"))


def _dense(weight: torch.Tensor, bias: torch.Tensor | None) -> Linear:
    if _packable(weight):
        try:
            w = weight.detach().contiguous()
            b = None if bias is None else bias.detach().contiguous()
            packed = _PackedDense(torch.ops.mkldnn._reorder_linear_weight(w, _PACK_HINT), b, w.shape[1], w.shape[0])
            probe = torch.randn(3, w.shape[1])
            if torch.allclose(packed(probe), F.linear(probe, w, b), rtol=1e-4, atol=1e-4):
                return packed
        except RuntimeError:  # a torch without this oneDNN path: the plain matmul is correct, only slower
            pass
    return _Dense(weight, bias)


class _DynamicInt8:
    """int8 weights (symmetric, per output channel), activations quantized per call."""

    __slots__ = ("packed", "reduce_range", "out_features")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, reduce_range: bool):
        w = weight.detach().float()
        scales = (w.abs().amax(dim=1) / 127.0).clamp(min=1e-12).double()
        zero_points = torch.zeros(w.shape[0], dtype=torch.long)
        qweight = torch.quantize_per_channel(w, scales, zero_points, axis=0, dtype=torch.qint8)
        b = None if bias is None else bias.detach().float()
        self.packed = torch.ops.quantized.linear_prepack(qweight, b)
        self.reduce_range = reduce_range
        self.out_features = w.shape[0]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        y = torch.ops.quantized.linear_dynamic(x.reshape(-1, shape[-1]), self.packed, self.reduce_range)
        return y.view(*shape[:-1], self.out_features)


def make_linear(weight: torch.Tensor, bias: torch.Tensor | None, quantization: str) -> Linear:
    if quantization == "none":
        return _dense(weight, bias)
    if quantization == "int8":
        if weight.device.type != "cpu":
            raise ValueError("MODEL_SERVICE_QUANTIZATION=int8 is a CPU kernel; on CUDA use none")
        return _DynamicInt8(weight, bias, reduce_range=not has_vnni())
    raise ValueError(f"unknown quantization {quantization!r} (one of {', '.join(QUANTIZATIONS)})")


def quantize_modules(model, quantization: str):
    """For a model the lean runner does not cover: swap its nn.Linear layers (or only its LM head) in place."""
    layer_q, head_q = split_quantization(quantization)
    if head_q == "none":
        return model
    if next(model.parameters()).device.type != "cpu":
        raise ValueError(f"MODEL_SERVICE_QUANTIZATION={quantization} is a CPU kernel; on CUDA use none")
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    model = model.float()
    if layer_q == "int8":
        return quantize_dynamic(model, {torch.nn.Linear: per_channel_dynamic_qconfig}, inplace=True)
    head = model.get_output_embeddings()
    if head is not None:
        if head.weight is model.get_input_embeddings().weight:  # tied: the embedding keeps its fp32 copy
            head.weight = torch.nn.Parameter(head.weight.detach().clone())
        name = next(n for n, m in model.named_modules() if m is head)
        quantize_dynamic(model, {name: per_channel_dynamic_qconfig}, inplace=True)
    return model
