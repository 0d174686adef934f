"""What a request leaves out, as the engine receives it, on both endpoints: the deployment's settings (else the
model's generation_config.json, else greedy) and the max_tokens defaults (chat: MODEL_SERVICE_DEFAULT_MAX_TOKENS;
text completions: 16 as OpenAI documents, MODEL_SERVICE_COMPLETIONS_DEFAULT_MAX_TOKENS), cut to what the context
leaves. The scripted engine records the SamplingParams exactly."""

from __future__ import annotations

import pytest

from model_service.generation_defaults import GenerationDefaults
from model_service.model_info import ModelInfo

from .conftest import client

pytestmark = pytest.mark.anyio
ENDPOINTS = {"chat": ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]}),
             "completion": ("/v1/completions", {"prompt": "hi"})}
SETTINGS = dict(default_temperature=0.5, default_top_p=0.9, default_repetition_penalty=1.2,
                default_frequency_penalty=0.3, default_presence_penalty=-0.4)


async def sent(app, engine, kind: str, **fields):
    path, body = ENDPOINTS[kind]
    async with client(app) as c:
        response = await c.post(path, json={**body, **fields})
    assert response.status_code == 200, response.text
    return engine.requests[-1].params


@pytest.mark.parametrize("kind", ENDPOINTS)
async def test_every_sampling_setting_reaches_the_engine(fake, kind):
    """Before, /v1/completions took only the model's temperature and fixed top_p at 1.0 and no penalties."""
    app, engine = fake(**SETTINGS)
    params = await sent(app, engine, kind)
    assert (params.temperature, params.top_p, params.repetition_penalty, params.frequency_penalty,
            params.presence_penalty) == (0.5, 0.9, 1.2, 0.3, -0.4)


@pytest.mark.parametrize("kind", ENDPOINTS)
async def test_a_request_s_own_values_win_over_the_settings(fake, kind):
    app, engine = fake(**SETTINGS)
    params = await sent(app, engine, kind, temperature=0, top_p=0.5, repetition_penalty=1.0, frequency_penalty=0.0,
                        presence_penalty=0.6, seed=11, stop=["END"])
    assert (params.temperature, params.top_p, params.repetition_penalty, params.frequency_penalty,
            params.presence_penalty, params.seed, params.stop) == (0.0, 0.5, 1.0, 0.0, 0.6, 11, ("END",))


async def test_without_settings_the_model_s_config_decides_and_smollm2_s_is_greedy(fake):
    app, engine = fake()
    params = await sent(app, engine, "chat")
    assert (params.temperature, params.top_p, params.repetition_penalty) == (0.0, 1.0, 1.0)


@pytest.mark.parametrize("kind, settings, expected", [
    ("chat", {}, 1024), ("completion", {}, 16),
    ("chat", {"default_max_tokens": 8}, 8), ("completion", {"completions_default_max_tokens": 5}, 5),
    ("completion", {"default_max_tokens": 8}, 16),  # the chat setting is not the completions one
])
async def test_max_tokens_left_out(fake, kind, settings, expected):
    app, engine = fake(**settings)
    assert (await sent(app, engine, kind)).max_tokens == expected


@pytest.mark.parametrize("kind", ENDPOINTS)
async def test_an_explicit_max_tokens_may_exceed_the_default(fake, kind):
    app, engine = fake(default_max_tokens=8, completions_default_max_tokens=5)
    assert (await sent(app, engine, kind, max_tokens=12)).max_tokens == 12


@pytest.mark.parametrize("kind", ENDPOINTS)
async def test_the_default_shrinks_to_what_the_context_leaves(fake, tokenizer, kind):
    app, engine = fake(max_model_len=40, default_max_tokens=30, completions_default_max_tokens=30)
    params = await sent(app, engine, kind, **({"prompt": "one two three " * 5} if kind == "completion" else {}))
    assert params.max_tokens == 40 - len(engine.requests[-1].prompt_ids)
    assert 0 < params.max_tokens < 30


def test_model_info_without_a_model_is_the_settings_alone(fake):
    """The scripted engine has no model: serving still has the settings' defaults, never the engine's model."""
    app, _ = fake(default_temperature=0.7)
    assert app.state.manager.model_info == ModelInfo(model_type=None, vocab_size=None,
                                                     generation=GenerationDefaults(temperature=0.7))
