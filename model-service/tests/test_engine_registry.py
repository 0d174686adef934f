"""MODEL_SERVICE_ENGINE names an entry of the engine registry; every name the setting accepts has one."""

from __future__ import annotations

import typing

from model_service.config import Settings
from model_service.model_manager import ENGINES


def test_every_engine_the_setting_accepts_has_a_builder():
    accepted = set(typing.get_args(Settings.model_fields["engine"].annotation)) - {"auto"}
    assert set(ENGINES) == accepted == {"continuous", "serial"}
