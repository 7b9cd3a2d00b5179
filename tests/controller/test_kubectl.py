"""What users run: the real kubectl against the emulator while the operator reconciles."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from kubesteps.controller.operator import Connection, build_registry, settings_hook
from kubesteps.kube.client import KubeClient

from .conftest import API, ROOT

pytestmark = pytest.mark.slow  # each test starts processes

KUBECTL = shutil.which("kubectl")


def quick(settings: kopf.OperatorSettings) -> None:
    settings_hook(settings, {"server_timeout": 30, "client_timeout": 40})


async def kubectl(
    kubeconfig: Path, *args: str, check: bool = True, env: dict[str, str] | None = None
) -> str:
    assert KUBECTL is not None, "these tests need kubectl on PATH (every CI machine has it)"
    process = await asyncio.create_subprocess_exec(
        KUBECTL,
        *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    text = output.decode()
    if check:
        assert process.returncode == 0, f"kubectl {' '.join(args)} failed:\n{text}"
    return text


async def test_apply_wait_and_get_show_the_pipeline_ready(
    api: KubeClient, kubeconfig: Path, operator_runner: Any
) -> None:
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        out = await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello.yaml"))
        assert "pipeline.kubesteps.dev/hello created" in out
        await kubectl(
            kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello", "--timeout=30s"
        )
        table = await kubectl(kubeconfig, "get", "pipelines")

    header, row = table.strip().splitlines()
    assert header.split() == ["NAME", "READY", "REASON", "RUN", "STEP", "NEXT", "AGE"]
    assert row.split()[:4] == ["hello", "True", "Succeeded", "1"]
    conditions = yaml.safe_load(
        await kubectl(kubeconfig, "get", "pipeline", "hello", "-o", "jsonpath={.status.conditions}")
    )
    assert {c["type"]: c["status"] for c in conditions} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
        "Greeted": "True",
    }


async def test_a_second_wait_after_a_spec_change_ignores_the_stale_condition(
    api: KubeClient, kubeconfig: Path, operator_runner: Any, tmp_path: Path
) -> None:
    manifest = yaml.safe_load((ROOT / "examples" / "hello.yaml").read_text())
    path = tmp_path / "hello.yaml"
    path.write_text(yaml.safe_dump(manifest))
    registry = build_registry(Connection())
    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        await kubectl(kubeconfig, "apply", "-f", str(path))
        await kubectl(
            kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello", "--timeout=30s"
        )

    # The operator is down while the spec changes: Ready stays True, for generation 1.
    manifest["spec"]["steps"][0]["with"]["duration"] = "1s"
    path.write_text(yaml.safe_dump(manifest))
    out = await kubectl(kubeconfig, "apply", "-f", str(path))
    assert "configured" in out
    waiter = asyncio.create_task(
        kubectl(kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello", "--timeout=60s")
    )
    await asyncio.sleep(2)
    assert not waiter.done(), "kubectl wait returned on the condition of the old generation"

    async with operator_runner(registry, wait_for=["pipelines"], settings_hook=quick):
        await asyncio.wait_for(waiter, timeout=60)
    body = await api.get(API, "Pipeline", "hello", "default")
    assert body is not None
    assert body["metadata"]["generation"] == 2
    assert body["status"]["observedGeneration"] == 2


TYPO = """\
apiVersion: kubesteps.dev/v1alpha1
kind: Pipeline
metadata: {name: typo, namespace: default}
spec:
  steps:
    - name: pause
      retires: 3
      action: delay
      with: {duration: 10ms}
"""


async def test_apply_validates_without_validate_false_and_refuses_unknown_fields(
    api: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    # kubectl reads the emulator's OpenAPI v3 and leaves validation to it (Strict).
    out = await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello.yaml"))
    assert out.strip() == "pipeline.kubesteps.dev/hello created"
    typo = tmp_path / "typo.yaml"
    typo.write_text(TYPO)

    refused = await kubectl(kubeconfig, "apply", "-f", str(typo), check=False)

    assert 'strict decoding error: unknown field "spec.steps[0].retires"' in refused
    assert await api.get(API, "Pipeline", "typo", "default") is None


async def test_validate_warn_prints_the_servers_warning_for_an_unknown_field(
    api: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(TYPO)

    out = await kubectl(kubeconfig, "apply", "--validate=warn", "-f", str(typo))

    assert out.splitlines() == [
        'Warning: unknown field "spec.steps[0].retires"',
        "pipeline.kubesteps.dev/typo created",
    ]


async def test_a_field_the_server_dropped_silently_is_reported_by_the_operator(
    api: KubeClient,
    kubeconfig: Path,
    tmp_path: Path,
    operator_runner: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    typo = tmp_path / "typo.yaml"
    typo.write_text(TYPO)
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        out = await kubectl(kubeconfig, "apply", "--validate=false", "-f", str(typo))
        assert out.strip() == "pipeline.kubesteps.dev/typo created"  # not a word, as on a cluster
        await kubectl(kubeconfig, "wait", "--for=condition=Ready", "pipeline/typo", "--timeout=30s")
        described = await until_in(kubeconfig, "FieldsDropped", "describe", "pipeline", "typo")

    said = (
        "spec.steps[0].retires: dropped by the API server: unknown field 'retires' — did "
        "you mean 'retry'? [step 'pause']"
    )
    (event,) = [line for line in described.splitlines() if "FieldsDropped" in line]
    assert event.split()[:2] == ["Warning", "FieldsDropped"]
    assert event.endswith(said)
    assert [
        r.getMessage() for r in caplog.records if "dropped by the API server" in r.getMessage()
    ] == [f"default/typo: {said}"]


async def until_in(kubeconfig: Path, text: str, *args: str) -> str:
    """Run kubectl until its output holds ``text`` (Events are posted in the background)."""
    async with asyncio.timeout(20):
        while True:
            out = await kubectl(kubeconfig, *args)
            if text in out:
                return out
            await asyncio.sleep(0.2)


async def test_describe_shows_the_pipelines_events(
    api: KubeClient, kubeconfig: Path, operator_runner: Any
) -> None:
    async with operator_runner(
        build_registry(Connection()), wait_for=["pipelines"], settings_hook=quick
    ):
        await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello.yaml"))
        await kubectl(
            kubeconfig, "wait", "--for=condition=Ready", "pipeline/hello", "--timeout=30s"
        )
        described = await until_in(kubeconfig, "RunSucceeded", "describe", "pipeline", "hello")

    events = described[described.index("Events:") :].splitlines()
    assert events[1].split() == ["Type", "Reason", "Age", "From", "Message"]
    reasons = [line.split()[1] for line in events[3:]]
    assert {"RunStarted", "StepSucceeded", "StepSkipped", "RunSucceeded"} <= set(reasons)


async def test_edit_works_without_validate_false(
    api: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello.yaml"))
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/duration: 2s/duration: 3s/' \"$1\"\n")
    editor.chmod(0o755)

    out = await kubectl(kubeconfig, "edit", "pipeline", "hello", env={"EDITOR": str(editor)})

    assert out.strip() == "pipeline.kubesteps.dev/hello edited"
    body = await api.get(API, "Pipeline", "hello", "default")
    assert body is not None
    assert body["spec"]["steps"][0]["with"]["duration"] == "3s"
    assert body["metadata"]["generation"] == 2


async def test_get_watch_prints_the_printer_columns_for_every_change(
    api: KubeClient, kubeconfig: Path
) -> None:
    await kubectl(kubeconfig, "apply", "-f", str(ROOT / "examples" / "hello.yaml"))
    assert KUBECTL is not None
    watch = await asyncio.create_subprocess_exec(
        KUBECTL,
        "get",
        "pipelines",
        "-w",
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert watch.stdout is not None
    try:
        async with asyncio.timeout(20):
            header = (await watch.stdout.readline()).decode()
            first = (await watch.stdout.readline()).decode()
            await api.request(
                "PATCH",
                "/apis/kubesteps.dev/v1alpha1/namespaces/default/pipelines/hello/status",
                body={
                    "status": {
                        "currentStep": "greet",
                        "conditions": [
                            {
                                "type": "Ready",
                                "status": "False",
                                "reason": "Waiting",
                                "message": "",
                                "lastTransitionTime": "2026-01-01T00:00:00Z",
                            }
                        ],
                    }
                },
                content_type="application/merge-patch+json",
            )
            second = (await watch.stdout.readline()).decode()
    finally:
        watch.kill()
        await watch.wait()

    assert header.split() == ["NAME", "READY", "REASON", "RUN", "STEP", "NEXT", "AGE"]
    assert first.split()[0] == "hello"
    assert second.split()[:4] == ["hello", "False", "Waiting", "greet"]


async def test_explain_reads_the_crds_schema(api: KubeClient, kubeconfig: Path) -> None:
    out = await kubectl(kubeconfig, "explain", "pipelines.spec.steps.retry.limit")

    assert "Retries after the first attempt, 0..100 (default 3; 0 = never retry)." in out


async def test_a_refusal_names_each_field_once_and_speaks_no_python(
    api: KubeClient, kubeconfig: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(TYPO.replace("retires: 3", "timeout: 5"))

    out = await kubectl(kubeconfig, "create", "-f", str(bad), check=False)

    assert out.splitlines() == [
        'The Pipeline "typo" is invalid: ',
        "* spec.steps[0].timeout: Invalid value: 5: spec.steps[0].timeout in body must be of "
        "type string: 5",
        "* <nil>: Invalid value: null: some validation rules were not checked because the "
        "object was invalid; correct the existing errors to complete validation",
    ]
