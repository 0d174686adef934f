"""Defaults for what a request leaves out: settings, else the model's generation_config.json, else greedy."""

from __future__ import annotations

from transformers import GenerationConfig

from model_service.config import Settings
from model_service.generation_defaults import GenerationDefaults


def test_a_model_without_sampling_config_is_greedy_without_penalties(model_dir):
    config = GenerationConfig.from_pretrained(model_dir)  # SmolLM2's: no do_sample, no penalties
    assert GenerationDefaults.resolve(config, Settings()) == GenerationDefaults(
        temperature=0.0, top_p=1.0, repetition_penalty=1.0, frequency_penalty=0.0, presence_penalty=0.0)


def test_the_models_sampling_config_is_used():
    config = GenerationConfig(do_sample=True, temperature=0.7, top_p=0.8, repetition_penalty=1.05)
    assert GenerationDefaults.resolve(config, Settings()) == GenerationDefaults(
        temperature=0.7, top_p=0.8, repetition_penalty=1.05)


def test_temperature_of_a_config_that_does_not_sample_is_ignored():
    config = GenerationConfig(do_sample=False, temperature=0.7, top_p=0.8)
    assert GenerationDefaults.resolve(config, Settings()).temperature == 0.0


def test_settings_override_the_model():
    config = GenerationConfig(do_sample=True, temperature=0.7, repetition_penalty=1.05)
    settings = Settings(default_temperature=0.2, default_repetition_penalty=1.2, default_frequency_penalty=0.5,
                        default_presence_penalty=-0.5, default_top_p=0.9)
    assert GenerationDefaults.resolve(config, settings) == GenerationDefaults(
        temperature=0.2, top_p=0.9, repetition_penalty=1.2, frequency_penalty=0.5, presence_penalty=-0.5)


def test_settings_apply_without_a_model_config():
    assert GenerationDefaults.resolve(None, Settings(default_presence_penalty=1.0)).presence_penalty == 1.0


def test_serving_fills_what_the_request_leaves_out(model_dir):
    """The serving layer with the real model and tokenizer (engine not started: only the request is translated)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model_service.engine.base import EngineLimits
    from model_service.engine.continuous import ContinuousBatchingEngine
    from model_service.metrics import ServiceMetrics
    from model_service.model_manager import ModelManager
    from model_service.protocol import ChatCompletionRequest
    from model_service.serving_chat import OpenAIServingChat

    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    settings = Settings(model_path=model_dir, default_temperature=0.5, default_repetition_penalty=1.2)
    manager = ModelManager(settings, engine=ContinuousBatchingEngine(model, tokenizer, EngineLimits()),
                           tokenizer=tokenizer)
    serving = OpenAIServingChat(manager, ServiceMetrics())
    messages = [{"role": "user", "content": "hi"}]
    left_out = serving._sampling_params(ChatCompletionRequest(messages=messages), 10)
    assert (left_out.temperature, left_out.top_p, left_out.repetition_penalty, left_out.frequency_penalty) == \
        (0.5, 1.0, 1.2, 0.0)
    given = serving._sampling_params(ChatCompletionRequest(messages=messages, temperature=0, repetition_penalty=1.0,
                                                           frequency_penalty=0.3), 10)
    assert (given.temperature, given.repetition_penalty, given.frequency_penalty) == (0.0, 1.0, 0.3)


def _serving(model_dir, settings_overrides: dict, kind: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model_service.engine.base import EngineLimits
    from model_service.engine.continuous import ContinuousBatchingEngine
    from model_service.metrics import ServiceMetrics
    from model_service.model_manager import ModelManager
    from model_service.serving_chat import OpenAIServingChat
    from model_service.serving_completion import OpenAIServingCompletion

    model, tokenizer = AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    manager = ModelManager(Settings(model_path=model_dir, **settings_overrides),
                           engine=ContinuousBatchingEngine(model, tokenizer, EngineLimits()), tokenizer=tokenizer)
    cls = OpenAIServingChat if kind == "chat" else OpenAIServingCompletion
    return cls(manager, ServiceMetrics())


def _left_out(kind: str):
    from model_service.protocol import ChatCompletionRequest, CompletionRequest

    return ChatCompletionRequest(messages=[{"role": "user", "content": "hi"}]) if kind == "chat" \
        else CompletionRequest(prompt="hi")


import pytest  # noqa: E402


@pytest.mark.parametrize("kind", ["chat", "completion"])
def test_every_sampling_setting_reaches_both_endpoints(model_dir, kind):
    """Before, /v1/completions took only the model's temperature and fixed top_p at 1.0 and no penalties."""
    serving = _serving(model_dir, dict(default_temperature=0.5, default_top_p=0.9, default_repetition_penalty=1.2,
                                       default_frequency_penalty=0.3, default_presence_penalty=-0.4), kind)
    params = serving._sampling_params(_left_out(kind), 10)
    assert (params.temperature, params.top_p, params.repetition_penalty, params.frequency_penalty,
            params.presence_penalty) == (0.5, 0.9, 1.2, 0.3, -0.4)


def test_a_completion_request_s_own_values_win_over_the_defaults(model_dir):
    from model_service.protocol import CompletionRequest

    serving = _serving(model_dir, dict(default_temperature=0.5, default_frequency_penalty=0.3), "completion")
    params = serving._sampling_params(CompletionRequest(prompt="hi", temperature=0, frequency_penalty=0.0,
                                                        presence_penalty=0.6, top_p=0.5), 10)
    assert (params.temperature, params.frequency_penalty, params.presence_penalty, params.top_p) == \
        (0.0, 0.0, 0.6, 0.5)


def test_max_tokens_left_out_is_16_for_completions_as_openai_documents_and_the_setting_for_chat(model_dir):
    completion = _serving(model_dir, {}, "completion")
    assert completion._sampling_params(_left_out("completion"), 10).max_tokens == 16
    chat = _serving(model_dir, {}, "chat")
    assert chat._sampling_params(_left_out("chat"), 10).max_tokens == 1024
    tuned = _serving(model_dir, dict(completions_default_max_tokens=64), "completion")
    assert tuned._sampling_params(_left_out("completion"), 10).max_tokens == 64


def test_model_info_is_read_once_from_the_model_and_serving_uses_it_without_the_engine_s_model(model_dir):
    """An engine without a model (a fake, another runtime): serving still has the settings' defaults."""
    from model_service.metrics import ServiceMetrics
    from model_service.model_manager import ModelManager
    from model_service.model_info import ModelInfo
    from model_service.serving_completion import OpenAIServingCompletion

    class ModelessEngine:
        pass

    manager = ModelManager(Settings(model_path=model_dir, default_temperature=0.7), engine=ModelessEngine())
    assert manager.model_info == ModelInfo(model_type=None, vocab_size=None,
                                           generation=GenerationDefaults(temperature=0.7))
    serving = OpenAIServingCompletion(manager, ServiceMetrics())
    assert serving._sampling_params(_left_out("completion"), 10).temperature == 0.7
