"""MODEL_SERVICE_DEFAULT_MAX_TOKENS caps a chat request that names no max_tokens, at most to what the context
leaves; MODEL_SERVICE_COMPLETIONS_DEFAULT_MAX_TOKENS (16 unless set, as OpenAI documents) a text completion."""

from __future__ import annotations

import openai
import pytest
from transformers import AutoTokenizer

from stack import free_port, start_model_service

CONTEXT, DEFAULT, COMPLETIONS_DEFAULT = 64, 8, 5


@pytest.fixture(scope="module")
def capped():
    env = {"MODEL_SERVICE_DEFAULT_MAX_TOKENS": str(DEFAULT), "MODEL_SERVICE_MAX_MODEL_LEN": str(CONTEXT),
           "MODEL_SERVICE_COMPLETIONS_DEFAULT_MAX_TOKENS": str(COMPLETIONS_DEFAULT)}
    with start_model_service(free_port(), env, timeout_s=180) as service:
        yield openai.OpenAI(base_url=service.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def ask(client: openai.OpenAI, content: str, **extra):
    return client.chat.completions.create(model="smollm2-135m-instruct",
                                          messages=[{"role": "user", "content": content}], **extra)


def test_request_without_max_tokens_stops_at_the_default(capped):
    reply = ask(capped, "Write a very long poem about the sea.")
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == DEFAULT


def test_text_completion_without_max_tokens_stops_at_its_own_default(capped):
    reply = capped.completions.create(model="smollm2-135m-instruct", prompt="Once upon a time, in a land far away")
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == COMPLETIONS_DEFAULT


def test_explicit_max_tokens_may_exceed_the_default(capped):
    reply = ask(capped, "Write a very long poem about the sea.", max_tokens=DEFAULT + 4)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == DEFAULT + 4


def test_default_shrinks_to_what_the_context_leaves(capped, model_dir):
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    def prompt_len(content: str) -> int:
        return len(tokenizer.apply_chat_template([{"role": "user", "content": content}],
                                                 add_generation_prompt=True)["input_ids"])

    content = "Write a very long poem about the sea"
    while prompt_len(content + " and the sky") <= CONTEXT - 3:
        content += " and the sky"
    left = CONTEXT - prompt_len(content)
    assert 0 < left < DEFAULT
    reply = ask(capped, content)
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == left
