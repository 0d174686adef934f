"""The lean Llama-family runner computes what transformers' forward computes, in the engine's calls:
equal within fp32 rounding (its packed matmuls sum in another order), the same argmax."""

from __future__ import annotations

import types

import pytest
import torch
from transformers import DynamicCache

from model_service.engine.llama_runner import LlamaFamilyRunner


def padded_batch(tokenizer, texts):
    """Left-padded ids, mask and positions, as the engine lays out a prefill pass."""
    rows = [tokenizer(t)["input_ids"] for t in texts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), 0, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, width - len(r):] = torch.tensor(r)
        mask[i, width - len(r):] = 1
        positions[i, width - len(r):] = torch.arange(len(r))
    return ids, mask, positions


def test_prefill_then_decode_logits_equal_transformers(model_and_tokenizer):
    model, tokenizer = model_and_tokenizer
    runner = LlamaFamilyRunner(model)
    ids, mask, positions = padded_batch(tokenizer, ["The capital of France is", "One, two, three, four,",
                                                    "Hi"])
    with torch.no_grad():
        theirs_cache, ours_cache = DynamicCache(config=model.config), DynamicCache(config=model.config)
        theirs = model(input_ids=ids, attention_mask=mask, position_ids=positions, past_key_values=theirs_cache,
                       use_cache=True).logits
        ours = runner(input_ids=ids, attention_mask=mask, position_ids=positions, cache=ours_cache,
                      logits_to_keep=0).logits
        real = mask.bool()
        assert torch.allclose(ours[real], theirs[real], atol=1e-3, rtol=0)  # padding positions are don't-care
        assert not torch.isnan(ours).any()  # a padding query sees itself, so no row is all-masked
        # one decoding step for every row, after the prefill's cache
        nxt = theirs[:, -1].argmax(-1, keepdim=True)
        mask2 = torch.cat([mask, torch.ones((3, 1), dtype=torch.long)], dim=1)
        pos2 = positions[:, -1:] + 1
        theirs2 = model(input_ids=nxt, attention_mask=mask2, position_ids=pos2, past_key_values=theirs_cache,
                        use_cache=True).logits
        ours2 = runner(input_ids=nxt, attention_mask=mask2, position_ids=pos2, cache=ours_cache).logits
    assert torch.allclose(ours2, theirs2[:, -1:], atol=1e-3, rtol=0)
    assert torch.equal(ours2.argmax(-1), theirs2[:, -1:].argmax(-1))


def test_supports_names_why_a_model_is_left_to_transformers():
    def fake(**config):
        return types.SimpleNamespace(config=types.SimpleNamespace(**config))

    assert LlamaFamilyRunner.supports(fake(model_type="chatglm")) == "model type 'chatglm' is not in the Llama family"
    assert LlamaFamilyRunner.supports(fake(model_type="llama", rope_parameters={"rope_type": "yarn"})) \
        == "rope type 'yarn'"
    assert LlamaFamilyRunner.supports(fake(model_type="qwen2", layer_types=["full_attention", "sliding_attention"])) \
        == "sliding-window layers"
    assert LlamaFamilyRunner.supports(fake(model_type="llama", hidden_act="gelu")) == "activation 'gelu'"
    with pytest.raises(ValueError, match="cannot serve this model: model type 'gpt2'"):
        LlamaFamilyRunner(fake(model_type="gpt2"))


def test_the_small_model_is_covered(model_and_tokenizer):
    assert LlamaFamilyRunner.supports(model_and_tokenizer[0]) is None


def test_bfloat16_prefill_rounds_as_transformers_does(model_dir):
    """In bf16 the runner's RMSNorm rounds where transformers' Llama does (fp32, back to bf16, then the weight).
    F.rms_norm on bf16 rounded elsewhere: logits 1.25 apart, and on an AMX CPU "What is the capital of
    France?" was answered "L'Étoile, la Marseillaise, la femme, ..." instead of "The capital of France is Paris."."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ids = torch.tensor([tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                                      add_generation_prompt=True, tokenize=True, return_dict=True)
                        ["input_ids"]])
    positions = torch.arange(ids.shape[1])[None]
    with torch.no_grad():
        theirs = model(input_ids=ids, position_ids=positions).logits[0, -1]
        ours = LlamaFamilyRunner(model)(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions,
                                        cache=DynamicCache(config=model.config)).logits[0, -1]
    assert torch.equal(ours, theirs)
