"""Shared fixtures for the packaging checks: the chart, rendered in-process by helm_python.

A test that takes a `variant` argument runs once for each of VARIANTS: the value sets a
user is expected to install with.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "kubesteps"
RELEASE_NAME = "ks"
RELEASE_NAMESPACE = "kubesteps-system"

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "namespaced": {"watchNamespaces": ["team-a", "team-b"]},
    "ha": {
        "replicaCount": 3,
        "leaderElection": {"enabled": True},
        "podDisruptionBudget": {"enabled": True, "minAvailable": 2},
    },
    "monitoring": {
        "metrics": {
            "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
            "prometheusRule": {"enabled": True},
            "dashboard": {"enabled": True, "namespace": "monitoring"},
            "perObject": True,
        },
    },
    "custom-image": {
        "image": {"repository": "registry.example.com/platform/kubesteps", "tag": "0.1.0-rc.1"},
        "imagePullSecrets": ["registry-credentials"],
        "extraEnv": [
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector:4317"},
            {"name": "OTEL_SERVICE_NAME", "value": "kubesteps"},
        ],
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops"}],
        "podAnnotations": {"example.com/team": "platform"},
        "podLabels": {"team": "platform"},
    },
    "approval-policy": {
        "watchNamespaces": ["releases"],
        "approvals": {"policy": {"enabled": True, "groups": ["release-managers"]}},
    },
    "namespaced-ha-extra-rules": {
        "watchNamespaces": ["apps"],
        "replicaCount": 2,
        "leaderElection": {"enabled": True, "leaseName": "kubesteps-apps"},
        "rbac": {
            "extraRules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "verbs": ["get", "create", "patch"],
                },
            ],
        },
        "metrics": {"port": 0},
        "logFormat": "text",
        "allowCrossNamespace": True,
    },
}

Manifest = dict[str, Any]
Render = Callable[[dict[str, Any]], list[Manifest]]
RenderFiles = Callable[[dict[str, Any]], dict[str, str]]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "variant" in metafunc.fixturenames:
        metafunc.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART_DIR


@pytest.fixture(scope="session")
def release_namespace() -> str:
    return RELEASE_NAMESPACE


@pytest.fixture(scope="session")
def variants() -> dict[str, dict[str, Any]]:
    return VARIANTS


@pytest.fixture(scope="session")
def package_version() -> str:
    version = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert isinstance(version, str)
    return version


@pytest.fixture(scope="module")
def chart() -> Iterator[Any]:
    """The chart, loaded once per test module."""
    with helm.Chart.load(str(CHART_DIR)) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def render_files(chart: Any) -> RenderFiles:
    """Render the chart with the given values: template path -> rendered text."""

    def _render_files(values: dict[str, Any]) -> dict[str, str]:
        files: dict[str, str] = chart.render(values, name=RELEASE_NAME, namespace=RELEASE_NAMESPACE)
        return files

    return _render_files


@pytest.fixture(scope="module")
def render(render_files: RenderFiles) -> Render:
    """Render the chart with the given values into its Kubernetes objects."""

    def _render(values: dict[str, Any]) -> list[Manifest]:
        files = render_files(values)
        return [
            doc
            for path in sorted(files)
            if path.endswith(".yaml")
            for doc in yaml.safe_load_all(files[path])
            if doc
        ]

    return _render
