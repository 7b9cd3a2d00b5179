"""`kubesteps ui` in headless Chromium (Debian's chromium, driven by playwright-core) against
the operator on the API emulator: what a user sees and does. Screenshots go to
.artifacts/ui/ (KUBESTEPS_UI_ARTIFACTS moves them)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .browser import Browser
from .conftest import (
    ARTIFACTS,
    Flaky,
    approval,
    delay,
    flaky,
    get,
    pipeline,
    run_phase,
)

pytestmark = [pytest.mark.usefixtures("operator"), pytest.mark.slow]
GREEN = "rgb(217, 242, 227)"  # --ok-bg: the fill of a succeeded step
NODE = 'svg.graph g.node[data-step="{}"]'


def shot(name: str) -> Path:
    return ARTIFACTS / f"{name}.png"


async def test_the_list_shows_a_pipeline(
    api: KubeClient, ui_command: str, browser: Browser
) -> None:
    manifest = pipeline("hello", [delay("build", 0.2), flaky("greet")])
    manifest["metadata"]["labels"] = {"team": "web"}
    await api.create(manifest)
    await run_phase(api, "hello", "Succeeded")

    await browser.goto(ui_command)
    assert "token=" not in await browser.evaluate("location.href")  # gone from the bar
    row = 'tr[data-pipeline="default/hello"]'
    await browser.wait(row + '[data-phase="Succeeded"]')
    assert "2/2" in await browser.text(row)
    assert await browser.text(row + " td:nth-child(2)") == "1"
    await browser.screenshot(shot("list"))
    # The filters: a label that matches keeps the row, one that does not shows none.
    await browser.fill("#f-label", "team=db")
    await browser.click("#f-apply")
    await browser.wait("#empty")
    assert await browser.count(row) == 0
    await browser.fill("#f-label", "team=web")
    await browser.click("#f-apply")
    await browser.wait(row)


async def test_the_graph_turns_green_as_steps_succeed_without_a_reload(
    api: KubeClient, ui_command: str, browser: Browser, broken: Flaky
) -> None:
    broken.broken.add("gate-keeper")  # holds the run until the page is watching
    steps = [
        flaky("gate-keeper", retry={"limit": 20, "backoff": {"initial": "1s", "max": "1s"}}),
        delay("build", 0.5),
        {
            "name": "checks",
            "parallel": {"steps": [delay("unit", 0.6), delay("lint", 0.3), flaky("scan")]},
        },
        {
            "name": "regions",
            "forEach": {
                "items": "['eu', 'us']",
                "step": {"action": "delay", "with": {"duration": "300ms"}},
            },
        },
        {
            "name": "pick",
            "switch": {
                "steps": [
                    {**flaky("canary"), "when": ["size(self.metadata.name) > 100"]},
                    {"name": "everywhere", "group": {"steps": [flaky("publish")]}},
                ]
            },
        },
    ]
    await api.create(pipeline("release", steps, **{"finally": [flaky("report")]}))
    await browser.goto(ui_command)
    await browser.click('a[href="#/p/default/release"]')
    await browser.wait(NODE.format("publish"))
    await browser.evaluate("window.loadedOnce = true")
    assert (
        await browser.evaluate(f"document.querySelector('{NODE.format('publish')}').dataset.phase")
        == "Pending"
    )
    await browser.wait('#live:text("live")')

    broken.broken.clear()
    # forEach is one node of the graph (as `kubesteps graph` draws it); its items are rows.
    for step in ("gate-keeper", "build", "unit", "lint", "scan", "regions", "publish", "report"):
        await browser.wait(NODE.format(step) + '[data-phase="Succeeded"]', within=30)
    assert (
        await browser.evaluate(f"document.querySelector('{NODE.format('canary')}').dataset.phase")
        == "Skipped"
    )
    assert await browser.count('svg.graph g.node.shape-switch[data-step="pick"]') == 1
    assert await browser.count('svg.graph .cluster[data-cluster="finally"]') == 1
    fill = await browser.evaluate(
        f"getComputedStyle(document.querySelector('{NODE.format('publish')} rect')).fill"
    )
    assert fill == GREEN
    assert await browser.evaluate("window.loadedOnce") is True  # drawn live, not reloaded
    assert await browser.text('tr[data-step="regions-1"] .kind') == " delay [us]"
    await browser.screenshot(shot("pipeline"))
    await browser.screenshot(shot("pipeline-top"), full_page=False)  # docs/ui-pipeline.png
    # At phone width the page still fits: no sideways scrolling of the page itself.
    await browser.viewport(390, 844)
    await browser.wait(NODE.format("publish"))
    width = await browser.evaluate("[document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width
    await browser.screenshot(shot("pipeline-phone"))


async def test_approve_from_the_page_lets_the_run_continue(
    api: KubeClient, ui_command: str, browser: Browser
) -> None:
    await api.create(
        pipeline("release", [delay("build", 0.2), approval("approve-release"), flaky("announce")])
    )
    await browser.goto(ui_command + "#/p/default/release")
    gate = '[data-approval="approve-release"]'
    await browser.wait(gate, within=30)
    assert (
        await browser.evaluate(
            f"document.querySelector('{NODE.format('approve-release')}').dataset.phase"
        )
        == "Waiting"
    )
    await browser.screenshot(shot("approval"))
    # The confirmation asks first; cancelling it sends nothing.
    await browser.click(gate + ' button[data-verb="approve"]')
    await browser.wait("#confirm[open]")
    await browser.click("#confirm-no")
    annotations = (await get(api, "release"))["metadata"].get("annotations") or {}
    assert "kubesteps.dev/approve.approve-release" not in annotations

    await browser.click(gate + ' button[data-verb="approve"]')
    await browser.fill("#confirm-name", "alice")
    await browser.click("#confirm-yes")
    await browser.wait('#notice.ok:has-text("approved step")')
    await browser.wait(NODE.format("announce") + '[data-phase="Succeeded"]', within=30)
    body = await run_phase(api, "release", "Succeeded")
    record = next(s for s in body["status"]["steps"] if s["name"] == "approve-release")
    assert record["outputs"]["approvedBy"] == "alice"
    assert await browser.count(gate) == 0


async def test_retry_after_a_failure_from_the_page(
    api: KubeClient, ui_command: str, browser: Browser, broken: Flaky
) -> None:
    broken.broken.add("deploy")
    await api.create(
        pipeline(
            "flaky", [delay("build", 0.2), flaky("deploy", retry={"limit": 0}), flaky("verify")]
        )
    )
    await run_phase(api, "flaky", "Failed")
    await browser.goto(ui_command + "#/p/default/flaky")
    await browser.wait(NODE.format("deploy") + '[data-phase="Failed"]')
    assert "deploy is broken on purpose" in await browser.text('tr[data-step="deploy"]')
    await browser.screenshot(shot("failed"))
    broken.broken.clear()

    await browser.click("#verb-retry")
    await browser.wait("#confirm[open]")
    await browser.click("#confirm-yes")
    await browser.wait('#notice.ok:has-text("asked for a retry of run flaky-1")')
    await browser.wait(NODE.format("verify") + '[data-phase="Succeeded"]', within=30)
    body = await run_phase(api, "flaky", "Succeeded")
    assert (body["status"]["run"]["number"], body["status"]["run"]["retries"]) == (1, 1)
    # Retry is offered only for a failed or cancelled run.
    assert await browser.evaluate("document.querySelector('#verb-retry').disabled") is True


async def test_a_refusal_by_the_cluster_shows_as_a_message(
    api: KubeClient, ui_command: str, browser: Browser, k8s_emulator: Emulator
) -> None:
    await api.create(pipeline("hello", [delay("build", 0.2)]))
    await run_phase(api, "hello", "Succeeded")
    await browser.goto(ui_command + "#/p/default/hello")
    await browser.wait(NODE.format("build") + '[data-phase="Succeeded"]')
    k8s_emulator.inject(
        verb="patch",
        resource="pipelines",
        status=403,
        times=None,
        message='pipelines.kubesteps.dev "hello" is forbidden: User "bob"'
        ' cannot patch resource "pipelines"',
    )
    await browser.click("#verb-rerun")
    await browser.click("#confirm-yes")
    await browser.wait("#notice.error")
    assert await browser.text("#notice") == (
        "you may not patch pipelines in namespace default (the server said:"
        ' pipelines.kubesteps.dev "hello" is forbidden: User "bob" cannot patch resource'
        ' "pipelines")'
    )
    await browser.screenshot(shot("refused"))
    assert (await get(api, "hello"))["status"]["run"]["number"] == 1


async def test_without_the_token_the_page_says_what_it_needs(
    ui_command: str, browser: Browser
) -> None:
    base = ui_command.split("/?")[0]
    assert await browser.goto(base + "/") == 401
    assert "needs the token" in await browser.text("body")


async def test_the_logs_of_a_job_step(
    api: KubeClient, ui_command: str, browser: Browser, k8s_emulator: Emulator
) -> None:
    job = {
        "name": "build",
        "action": "job",
        "with": {"image": "busybox", "command": ["sh", "-c", "echo built"]},
    }
    await api.create(pipeline("jobs", [job]))
    async with asyncio.timeout(30):  # the operator creates the Job; no kubelet runs it here
        while True:
            jobs = await api.list("batch/v1", "Job", "default")
            if jobs:
                break
            await asyncio.sleep(0.1)
    labels = dict(jobs[0]["spec"]["template"]["metadata"]["labels"])
    pod = f"{jobs[0]['metadata']['name']}-x1y2z"
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": pod,
                "namespace": "default",
                "labels": {**labels, "job-name": jobs[0]["metadata"]["name"]},
            },
            "spec": {"containers": [{"name": "step", "image": "busybox"}]},
        }
    )
    k8s_emulator.write_pod_log("default", pod, "compiling...\nbuilt\n")
    await browser.goto(ui_command + "#/p/default/jobs")
    await browser.wait("#logs-show")
    await browser.click("#logs-show")
    await browser.wait('pre.log:has-text("built")')
    assert await browser.text("pre.log") == "compiling...\nbuilt\n"
    assert pod in await browser.text("#logs h3")
    await browser.screenshot(shot("logs"))
