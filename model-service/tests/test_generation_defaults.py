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
