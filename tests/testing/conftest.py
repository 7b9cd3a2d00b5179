"""Fixtures for the emulator's own tests.

``pytest_plugins`` only works in the top-level conftest (not ours to own), so the plugin's
fixtures are imported by name instead; the plugin module is still what users enable.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from kubesteps.testing import Emulator
from kubesteps.testing.pytest_plugin import k8s_emulator, kubeconfig, operator_runner

from .widgets import WIDGET_CRD

__all__ = ["k8s_emulator", "kubeconfig", "operator_runner"]


@pytest.fixture
def emulator(k8s_emulator: Emulator) -> Emulator:
    """The serving emulator with the Widget CRD registered."""
    k8s_emulator.register_crd(copy.deepcopy(WIDGET_CRD))
    return k8s_emulator


@pytest_asyncio.fixture
async def http(emulator: Emulator) -> AsyncIterator[aiohttp.ClientSession]:
    """A plain HTTP client whose relative URLs go to the emulator."""
    assert emulator.url is not None
    async with aiohttp.ClientSession(base_url=emulator.url) as session:
        yield session
