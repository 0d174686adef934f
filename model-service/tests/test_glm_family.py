"""A GLM-family architecture (as ChatGLM3-6B is) loads and streams through the same path.

ChatGLM3-6B itself is remote code that needs a GPU-sized download; transformers ships the
GLM architecture natively, so a tiny randomly initialised GlmForCausalLM, saved with a real
tokenizer, goes through the very loader, engine and HTTP path that the 6B model would.
"""

from __future__ import annotations

import openai
import pytest
from transformers import AutoTokenizer, GlmConfig, GlmForCausalLM

from stack import free_port, start_model_service


@pytest.fixture(scope="module")
def tiny_glm_dir(tmp_path_factory, model_dir):
    out = tmp_path_factory.mktemp("tiny-glm")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    config = GlmConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=2048,
                       pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                       bos_token_id=tokenizer.bos_token_id)
    GlmForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def test_tiny_glm_streams_through_the_service(tiny_glm_dir):
    env = {"MODEL_SERVICE_MODEL_PATH": str(tiny_glm_dir), "MODEL_SERVICE_MODEL_NAME": "tiny-glm"}
    with start_model_service(free_port(), env, timeout_s=120) as service:
        client = openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-glm"]
        stream = client.chat.completions.create(model="tiny-glm", stream=True, max_tokens=12,
                                                stream_options={"include_usage": True},
                                                messages=[{"role": "user", "content": "你好"}])
        chunks = list(stream)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finish in (["length"], ["stop"])
        usage = chunks[-1].usage
        assert usage.prompt_tokens > 0 and 1 <= usage.completion_tokens <= 12
        if finish == ["length"]:
            assert usage.completion_tokens == 12
