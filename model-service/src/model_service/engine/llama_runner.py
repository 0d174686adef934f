"""A lean forward pass for Llama-family decoders (Llama, Mistral, Qwen2), called like the model.

transformers' forward is general: per step it builds a 4D mask, dispatches attention through
an interface table, runs three projections for q/k/v and two for the MLP, and goes through
module hooks and kwargs plumbing in every layer. On a small model on CPU that host-side work is
most of a decoding step at one row (measured: docs/benchmarks-model-service.md). This runner
does the same arithmetic with fewer, larger ops:
- q, k and v are one matmul (weights concatenated at load), gate and up another;
- RMSNorm is `F.rms_norm`, rotary tables are computed once for the whole context;
- attention is one `scaled_dot_product_attention` with grouped-query heads;
- only the last position of each row reaches the final norm and the LM head.

It reads the weights of a loaded transformers model (so loading, dtype and the checkpoint
format stay transformers' business) and takes the same call the engine makes:
`runner(input_ids=, attention_mask=, position_ids=, cache=, logits_to_keep=1)`, with any
transformers `Cache` (the engine's slab cache, or a `DynamicCache` for a prefill).
Models it does not cover (other architectures, rope scaling, sliding windows, remote code)
keep transformers' own forward: `LlamaFamilyRunner.supports(model)` says which.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .quantization import Linear, make_linear, split_quantization

_FAMILY = {"llama", "mistral", "qwen2"}


@dataclass
class RunnerOutput:
    logits: torch.Tensor  # [rows, kept positions, vocab]


class _Layer:
    __slots__ = ("input_norm", "post_norm", "qkv", "o", "gate_up", "down")

    def __init__(self, input_norm, post_norm, qkv: Linear, o: Linear, gate_up: Linear, down: Linear):
        self.input_norm, self.post_norm = input_norm, post_norm
        self.qkv, self.o, self.gate_up, self.down = qkv, o, gate_up, down


class LlamaFamilyRunner:
    @staticmethod
    def supports(model) -> str | None:
        """None when the runner can serve this model, else why not (kept in the load log)."""
        config = model.config
        if getattr(config, "model_type", None) not in _FAMILY:
            return f"model type {getattr(config, 'model_type', None)!r} is not in the Llama family"
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            return f"rope type {rope.get('rope_type')!r}"
        if any(t != "full_attention" for t in getattr(config, "layer_types", None) or []):
            return "sliding-window layers"
        if getattr(config, "hidden_act", "silu") != "silu":
            return f"activation {config.hidden_act!r}"
        if getattr(config, "mlp_bias", False):
            return "MLP biases"
        return None

    def __init__(self, model, quantization: str = "none") -> None:
        reason = self.supports(model)
        if reason is not None:
            raise ValueError(f"LlamaFamilyRunner cannot serve this model: {reason}")
        config = model.config
        self.config = config
        inner = model.model
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.hidden = config.hidden_size
        self.eps = config.rms_norm_eps
        self.embed = inner.embed_tokens.weight.detach()
        self.final_norm = inner.norm.weight.detach()
        self.layers: list[_Layer] = []
        layer_q, head_q = split_quantization(quantization)
        with torch.no_grad():
            for layer in inner.layers:
                att, mlp = layer.self_attn, layer.mlp
                qkv_w = torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight])
                qkv_b = None
                if att.q_proj.bias is not None:
                    qkv_b = torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias])
                self.layers.append(_Layer(
                    layer.input_layernorm.weight.detach(), layer.post_attention_layernorm.weight.detach(),
                    make_linear(qkv_w, qkv_b, layer_q),
                    make_linear(att.o_proj.weight, att.o_proj.bias, layer_q),
                    make_linear(torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), None, layer_q),
                    make_linear(mlp.down_proj.weight, None, layer_q)))
            self.lm_head = make_linear(model.lm_head.weight, getattr(model.lm_head, "bias", None), head_q)
        self.intermediate = config.intermediate_size
        rope = getattr(config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        inv_freq = 1.0 / (theta ** (torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim))
        positions = torch.arange(config.max_position_embeddings, dtype=torch.float32)
        freqs = torch.outer(positions, inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        dtype, device = self.embed.dtype, self.embed.device
        self.cos = emb.cos().to(device=device, dtype=dtype)
        self.sin = emb.sin().to(device=device, dtype=dtype)

    @staticmethod
    def release_source_weights(model) -> None:
        """Free the decoder matmul weights the runner copied (fused or packed) out of `model`:
        without this a served model holds them twice (~430 MB for SmolLM2-135M in fp32). After it,
        `model` is only a config and embedding holder: its own forward no longer works."""
        empty = torch.empty(0)
        for layer in model.model.layers:
            att, mlp = layer.self_attn, layer.mlp
            for linear in (att.q_proj, att.k_proj, att.v_proj, att.o_proj, mlp.gate_proj, mlp.up_proj, mlp.down_proj):
                linear.weight.data = empty.to(dtype=linear.weight.dtype, device=linear.weight.device)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
                 cache, logits_to_keep: int = 1, **_ignored) -> RunnerOutput:
        rows, length = input_ids.shape
        h, kvh, d = self.heads, self.kv_heads, self.head_dim
        x = F.embedding(input_ids, self.embed)
        cos = self.cos[position_ids].unsqueeze(2)  # [rows, length, 1, d]
        sin = self.sin[position_ids].unsqueeze(2)
        mask = _attention_mask(attention_mask, length)
        half = d // 2
        for i, layer in enumerate(self.layers):
            y = _rms_norm(x, layer.input_norm, self.eps)
            qkv = layer.qkv(y).view(rows, length, h + 2 * kvh, d)
            qk = qkv[:, :, : h + kvh]
            rotated = torch.cat((-qk[..., half:], qk[..., :half]), dim=-1)
            qk = qk * cos + rotated * sin
            q = qk[:, :, :h].transpose(1, 2)
            k = qk[:, :, h:].transpose(1, 2)
            v = qkv[:, :, h + kvh :].transpose(1, 2)
            k, v = cache.update(k, v, i)
            att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=kvh != h)
            x = x + layer.o(att.transpose(1, 2).reshape(rows, length, h * d))
            y = _rms_norm(x, layer.post_norm, self.eps)
            gate, up = layer.gate_up(y).split(self.intermediate, dim=-1)
            x = x + layer.down(F.silu(gate) * up)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        x = _rms_norm(x, self.final_norm, self.eps)
        return RunnerOutput(logits=self.lm_head(x))


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """RMSNorm as transformers' Llama computes it: in fp32, rounded back, then scaled by the weight. With bf16
    weights, F.rms_norm rounds elsewhere; at 135M parameters that is enough to flip a greedy answer (measured
    on an AMX CPU: "The capital of France is Paris." became "L'Étoile, la Marseillaise, ...")."""
    if x.dtype == torch.float32:
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    normed = F.rms_norm(x.float(), (x.shape[-1],), None, eps)
    return weight * normed.to(x.dtype)


def _attention_mask(mask2d: torch.Tensor, length: int) -> torch.Tensor:
    """Boolean [rows, 1, length, columns]: a query sees the real tokens up to its own position.

    Columns are the cache window after this pass (earlier tokens, then these `length`). A padding
    query also sees itself, so that no query row is fully masked (SDPA would give NaN there, and
    NaN keys would then reach real rows through 0 * NaN)."""
    allowed = mask2d.bool()
    if length == 1:
        return allowed[:, None, None, :]
    columns = allowed.shape[1]
    past = columns - length
    q = torch.arange(length, device=allowed.device)[:, None]
    c = torch.arange(columns, device=allowed.device)[None, :]
    causal = c <= q + past
    own = c == q + past
    return (allowed[:, None, None, :] & causal) | own
