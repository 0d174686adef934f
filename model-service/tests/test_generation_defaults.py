"""Defaults for what a request leaves out: settings, else the model's generation_config.json, else greedy."""

from __future__ import annotations

import types

from transformers import AutoConfig, GenerationConfig

from model_service.config import Settings
from model_service.generation_defaults import GenerationDefaults
from model_service.model_info import ModelInfo


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


def test_model_info_reads_the_model_s_config_and_generation_config(model_dir):
    """What serving knows of the model, read once at load (the serving tests are in tests/fake_engine)."""
    model = types.SimpleNamespace(config=AutoConfig.from_pretrained(model_dir),
                                  generation_config=GenerationConfig.from_pretrained(model_dir))
    assert ModelInfo.of(model, Settings(default_top_p=0.9)) == ModelInfo(
        model_type="llama", vocab_size=49152, generation=GenerationDefaults(top_p=0.9))
