from __future__ import annotations

from model_service.prepare_model import is_prepared, prepare


def test_prepared_model_is_a_plain_directory(model_dir):
    assert is_prepared(model_dir)
    assert (model_dir / "chat_template.jinja").is_file() or "chat_template" in (
        model_dir / "tokenizer_config.json").read_text()


def test_prepare_is_idempotent(model_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()}
    assert prepare(model_dir) == model_dir
    assert "already prepared" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in model_dir.iterdir()} == before
