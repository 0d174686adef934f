"""Sampling controls against the real small model: penalties, logit_bias, logprobs, n and seeds.

Numbers measured here are printed (run with -s to see them); the shared session server serves them."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from test_errors import assert_openai_error

MODEL = "smollm2-135m-instruct"
# Greedy decoding loops on this prompt ("The cat sat on the mat. The cat sat on the mat. ...").
LOOPING = [{"role": "user", "content": "Repeat after me: the cat sat on the mat, the cat sat on the mat, "
                                       "the cat sat on the mat"}]
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
_CHAR_OF_BYTE = bytes_to_unicode()


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="module")
def reference_model(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir).eval()


def distinct_4gram_ratio(text: str) -> float:
    words = text.split()
    grams = [tuple(words[i : i + 4]) for i in range(len(words) - 3)]
    return len(set(grams)) / len(grams)


def token_ids(tokenizer, logprobs_content: list[dict]) -> list[int]:
    """The generated ids, read back from each logprob entry's exact bytes (byte-level BPE pieces)."""
    return [tokenizer.convert_tokens_to_ids("".join(_CHAR_OF_BYTE[b] for b in entry["bytes"]))
            for entry in logprobs_content]


def prompt_ids(tokenizer, messages) -> list[int]:
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True)["input_ids"])


def chat(http, **body) -> dict:
    response = http.post("/v1/chat/completions", json={"model": MODEL, **body})
    assert response.status_code == 200, response.text
    return response.json()


def stream_chat(http, **body) -> list[dict]:
    with http.stream("POST", "/v1/chat/completions", json={"model": MODEL, "stream": True, **body}) as response:
        assert response.status_code == 200
        events = [line[len("data: "):] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_penalties_reduce_repetition_on_a_looping_prompt(http):
    def ratio(**penalty) -> float:
        reply = chat(http, messages=LOOPING, max_tokens=32, **penalty)
        return distinct_4gram_ratio(reply["choices"][0]["message"]["content"])

    greedy, frequency, repetition = ratio(), ratio(frequency_penalty=1.0), ratio(repetition_penalty=1.3)
    print(f"\ndistinct 4-gram ratio, 32 tokens greedy: none {greedy:.3f}, frequency_penalty=1.0 {frequency:.3f}, "
          f"repetition_penalty=1.3 {repetition:.3f}")
    assert frequency > greedy
    assert repetition > greedy


def test_logprobs_sum_matches_the_model_on_prompt_and_output(http, tokenizer, reference_model):
    reply = chat(http, messages=QUESTION, max_tokens=10, temperature=1.0, seed=3, logprobs=True, top_logprobs=2)
    content = reply["choices"][0]["logprobs"]["content"]
    assert len(content) == reply["usage"]["completion_tokens"]
    output = token_ids(tokenizer, content)
    prompt = prompt_ids(tokenizer, QUESTION)
    with torch.no_grad():
        logits = reference_model(torch.tensor([prompt + output])).logits[0]
    reference = torch.log_softmax(logits[len(prompt) - 1 : -1].float(), dim=-1)
    expected = sum(reference[i, token].item() for i, token in enumerate(output))
    assert sum(entry["logprob"] for entry in content) == pytest.approx(expected, abs=1e-3)
    assert all(len(entry["top_logprobs"]) == 2 for entry in content)


def test_greedy_token_heads_its_top_logprobs_and_bytes_join_to_the_text(http):
    reply = chat(http, messages=QUESTION, max_tokens=12, logprobs=True, top_logprobs=3)
    choice = reply["choices"][0]
    for entry in choice["logprobs"]["content"]:
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert entry["top_logprobs"][0]["logprob"] == entry["logprob"]
        assert [t["logprob"] for t in entry["top_logprobs"]] == sorted(
            (t["logprob"] for t in entry["top_logprobs"]), reverse=True)
    # The end token is generated (and counted in usage) too: its entry comes last, its text is not content.
    *text_tokens, end = choice["logprobs"]["content"]
    assert choice["finish_reason"] == "stop" and end["token"] == "<|im_end|>"
    assert b"".join(bytes(entry["bytes"]) for entry in text_tokens).decode() == choice["message"]["content"]
    assert len(choice["logprobs"]["content"]) == reply["usage"]["completion_tokens"]


def test_n_three_seeded_choices_differ_count_in_usage_and_repeat(http, tokenizer):
    def ask() -> dict:
        return chat(http, messages=QUESTION, n=3, temperature=1.0, seed=11, max_tokens=8, logprobs=True)

    first, second = ask(), ask()
    assert [c["index"] for c in first["choices"]] == [0, 1, 2]
    texts = [c["message"]["content"] for c in first["choices"]]
    assert len(set(texts)) == 3  # each choice draws with its own derived seed
    per_choice = [len(c["logprobs"]["content"]) for c in first["choices"]]
    assert first["usage"]["completion_tokens"] == sum(per_choice)
    assert first["usage"]["prompt_tokens"] == len(prompt_ids(tokenizer, QUESTION))  # the prompt counts once
    assert first["usage"]["total_tokens"] == first["usage"]["prompt_tokens"] + sum(per_choice)
    assert [c["message"]["content"] for c in second["choices"]] == texts


def test_logit_bias_bans_the_greedy_first_token_and_forces_another(http, tokenizer):
    def first_token(**extra) -> int:
        reply = chat(http, messages=QUESTION, max_tokens=1, logprobs=True, **extra)
        return token_ids(tokenizer, reply["choices"][0]["logprobs"]["content"])[0]

    greedy = first_token()
    assert first_token(logit_bias={str(greedy): -100}) != greedy
    forced = tokenizer.convert_tokens_to_ids("Ġbanana")
    assert first_token(logit_bias={str(forced): 100}) == forced


def test_stream_and_non_stream_agree_under_greedy_with_two_choices(http):
    body = {"messages": QUESTION, "max_tokens": 12, "n": 2, "logprobs": True, "top_logprobs": 1}
    whole = chat(http, **body)
    chunks = stream_chat(http, stream_options={"include_usage": True}, **body)
    streamed = {0: {"text": "", "logprobs": [], "finish": None}, 1: {"text": "", "logprobs": [], "finish": None}}
    for chunk in chunks[:-1]:
        (choice,) = chunk["choices"]
        got = streamed[choice["index"]]
        got["text"] += choice["delta"].get("content") or ""
        got["logprobs"] += (choice.get("logprobs") or {}).get("content") or []
        got["finish"] = choice.get("finish_reason") or got["finish"]
    for index, choice in enumerate(whole["choices"]):
        assert streamed[index] == {"text": choice["message"]["content"], "logprobs": choice["logprobs"]["content"],
                                   "finish": choice["finish_reason"]}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == whole["usage"]
    assert whole["choices"][0]["message"] == whole["choices"][1]["message"]  # greedy: the same answer twice


@pytest.mark.parametrize("extra, param", [
    ({"top_logprobs": 2}, "top_logprobs"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
    ({"n": 5}, "n"),
    ({"n": 0}, "n"),
    ({"frequency_penalty": 2.5}, "frequency_penalty"),
    ({"presence_penalty": -2.01}, "presence_penalty"),
    ({"repetition_penalty": 0}, "repetition_penalty"),
    ({"repetition_penalty": -1.0}, "repetition_penalty"),
    ({"logit_bias": {"hello": 5}}, "logit_bias"),
    ({"logit_bias": {"-3": 5}}, "logit_bias"),
    ({"logit_bias": {"12": 100.5}}, "logit_bias"),
    ({"logit_bias": {"49152": 1}}, "logit_bias"),  # one past SmolLM2's vocabulary
    ({"logit_bias": {"99999999999999999999999": 1}}, "logit_bias"),
])
def test_bad_sampling_controls_are_400_with_param(http, extra, param):
    response = http.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 1, **extra})
    assert assert_openai_error(response, 400, param)["type"] == "invalid_request_error"


def test_openai_sdk_reads_choices_and_logprobs(client):
    reply = client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=3, n=2, logprobs=True,
                                           top_logprobs=2, frequency_penalty=0.5, presence_penalty=0.5,
                                           logit_bias={"504": -100}, extra_body={"repetition_penalty": 1.1})
    assert [c.index for c in reply.choices] == [0, 1]
    for choice in reply.choices:
        assert [len(entry.top_logprobs) for entry in choice.logprobs.content] == [2, 2, 2]
        # raw logprobs: the penalties moved the pick off the model's own favourite, which still heads the list
        first = choice.logprobs.content[0]
        assert (first.token, first.top_logprobs[0].token) == ("L", "The")
        assert first.logprob < first.top_logprobs[0].logprob
    assert reply.usage.completion_tokens == 6
