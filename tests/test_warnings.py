"""The test run shows deprecations instead of hiding them, and fails on one of our own."""

from __future__ import annotations

import warnings

import pytest


def test_a_deprecation_in_kubesteps_fails_the_run() -> None:
    with pytest.raises(DeprecationWarning, match="old API"):
        warnings.warn_explicit(
            "old API", DeprecationWarning, "kubesteps/x.py", 1, module="kubesteps.x"
        )


def test_a_deprecation_elsewhere_is_shown_not_hidden(recwarn: pytest.WarningsRecorder) -> None:
    warnings.warn_explicit("old API", DeprecationWarning, "lib.py", 1, module="somelib")

    assert [str(w.message) for w in recwarn] == ["old API"]


def test_no_unused_pytest_plugin_is_loaded(pytestconfig: pytest.Config) -> None:
    # kmock (unused since the project's own emulator) loaded into every run, and a filter
    # hid its deprecation warning.
    assert not pytestconfig.pluginmanager.has_plugin("kmock")
