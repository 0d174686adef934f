from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from model_service.engine.detokenizer import IncrementalDetokenizer, StopStringMatcher


@pytest.fixture(scope="module")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.mark.parametrize("text", ["你好，世界！我是人工智能助手。", "Emoji 👋🏽 and 🇫🇷 flags", "plain English, with spaces."])
def test_deltas_never_split_characters(tokenizer, text):
    detok = IncrementalDetokenizer(tokenizer)
    deltas = [detok.push(t) for t in tokenizer.encode(text)]
    assert all("\ufffd" not in d for d in deltas)
    assert "".join(deltas) == text


def test_stop_matcher_holds_back_a_possible_stop_prefix():
    stops = StopStringMatcher(("STOP",))
    assert stops.feed("hello ST") == ("hello", False)
    assert stops.feed("OP and more") == (" ", True)
    assert stops.text == "hello "


def test_stop_matcher_releases_a_false_alarm():
    stops = StopStringMatcher(("STOP",))
    out1, _ = stops.feed("ST")
    out2, _ = stops.feed("ILL going")
    assert out1 + out2 + stops.flush() == "STILL going"
