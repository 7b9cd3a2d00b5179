"""`kubectl kubesteps plan NAME`: the dry run of a live Pipeline, through the real kubectl
and the plugin on the emulator; it only reads."""

from __future__ import annotations

import json

import pytest

from kubesteps.controller.reconciler import Reconciler
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import API, Kubectl

pytestmark = pytest.mark.slow  # runs the real kubectl and the plugin as processes


async def test_plan_names_a_live_pipeline_and_writes_nothing(
    api: KubeClient, kubectl: Kubectl, k8s_emulator: Emulator
) -> None:
    await api.create(
        {
            "apiVersion": API,
            "kind": "Pipeline",
            "metadata": {"name": "release", "namespace": "default"},
            "spec": {
                "params": [{"name": "region", "value": "us"}],
                "steps": [
                    {"name": "soak", "action": "delay", "with": {"duration": "1h"}},
                    {
                        "name": "eu-only",
                        "when": ["params.region == 'eu'"],
                        "action": "delay",
                        "with": {"duration": "1s"},
                    },
                ],
            },
        }
    )
    body = await api.get(API, "Pipeline", "release", "default")
    assert body is not None
    await Reconciler(lambda: api).reconcile(body)
    writes = sum(
        k8s_emulator.requests.count(verb) for verb in ("create", "update", "patch", "delete")
    )

    done = await kubectl("kubesteps", "plan", "release", "-o", "json")

    assert done.code == 0, done.err
    (shown,) = json.loads(done.out)
    assert shown["headline"] == "run 1 (Running)"
    assert [(s["name"], s["verdict"]) for s in shown["steps"]] == [
        ("soak", "wait"),
        ("eu-only", "skip"),
    ]
    assert shown["steps"][1]["detail"] == "when[0] `params.region == 'eu'` is false: skipped"
    assert (
        sum(k8s_emulator.requests.count(verb) for verb in ("create", "update", "patch", "delete"))
        == writes
    )


async def test_plan_of_a_pipeline_that_is_not_there_says_so_in_one_line(
    api: KubeClient, kubectl: Kubectl
) -> None:
    done = await kubectl("kubesteps", "plan", "nowhere")

    assert done.code != 0
    assert "nowhere" in done.err
    assert "Traceback" not in done.err
