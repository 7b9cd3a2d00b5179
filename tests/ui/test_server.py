"""`kubesteps ui`'s HTTP endpoints against the API emulator: every endpoint, the token, the
same-origin check of verbs, the Host check, and refusals by the cluster shown in words."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import API, Ui, approval, delay, get, pipeline

ENDPOINTS = [
    ("GET", "/"),
    ("GET", "/api/pipelines"),
    ("GET", "/api/stream"),
    ("GET", "/api/pipelines/default/hello"),
    ("GET", "/api/pipelines/default/hello/events"),
    ("GET", "/api/pipelines/default/hello/logs?step=build"),
    ("GET", "/api/pipelines/default/hello/stream"),
    ("POST", "/api/pipelines/default/hello/rerun"),
]
FORBIDDEN = (
    'pipelines.kubesteps.dev "hello" is forbidden: User "bob" cannot patch resource'
    ' "pipelines" in API group "kubesteps.dev" in the namespace "default"'
)


async def answer(response: aiohttp.ClientResponse) -> tuple[int, Any]:
    text = await response.text()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, text


async def hello(api: KubeClient, **spec: Any) -> dict[str, Any]:
    return await api.create(pipeline("hello", [delay("build", 0.1)], **spec))


async def namespace(api: KubeClient, name: str) -> None:
    await api.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def set_status(api: KubeClient, name: str, status: dict[str, Any]) -> None:
    """Write a status as the operator would (the fields the CRD requires filled in)."""
    defaults = {"trigger": "Created", "startedAt": "2026-01-01T10:00:00Z"}
    status["run"] = {**defaults, "specHash": "0123456789abcdef", **status["run"]}
    status["history"] = [{**defaults, **entry} for entry in status.get("history", [])]
    await api.patch(API, "Pipeline", name, "default", {"status": status}, subresource="status")


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
async def test_every_endpoint_needs_the_token(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient, method: str, path: str
) -> None:
    await hello(api)
    for headers in (
        {},
        {"X-Kubesteps-Token": "not-the-token"},
        {"Cookie": f"{ui.settings.cookie}=not-the-token"},
    ):
        async with http.request(
            method, ui.base + path, headers={**ui.origin, **headers}, json={}
        ) as response:
            status, body = await answer(response)
        assert status == 401, (path, headers)
        assert "needs the token" in body["error"]
    body_before = await get(api, "hello")
    assert "kubesteps.dev/rerun" not in (body_before["metadata"].get("annotations") or {})


async def test_the_token_in_the_url_becomes_a_strict_cookie_and_leaves_the_url(
    ui: Ui, http: aiohttp.ClientSession
) -> None:
    async with http.get(ui.url, allow_redirects=False) as response:
        assert response.status == 303
        assert response.headers["Location"] == "/"
        cookie = response.cookies[ui.settings.cookie]
    assert cookie.value == ui.token
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Strict"
    async with http.get(ui.base + "/", headers={"Cookie": f"{cookie.key}={cookie.value}"}) as page:
        assert page.status == 200
        assert "<title>kubesteps</title>" in await page.text()
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
    async with http.get(
        ui.base + "/api/pipelines", headers={"Cookie": f"{cookie.key}={cookie.value}"}
    ) as listed:
        assert listed.status == 200


async def test_a_start_has_a_token_of_its_own(api: KubeClient) -> None:
    from kubesteps.ui.server import Settings

    tokens = {Settings().token for _ in range(20)}
    assert len(tokens) == 20
    assert all(len(token) >= 32 for token in tokens)


async def test_static_files_are_served_without_the_token_and_nothing_else_is(
    ui: Ui, http: aiohttp.ClientSession
) -> None:
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        async with http.get(f"{ui.base}/static/{name}") as response:
            assert response.status == 200
            assert response.content_type == kind
    for name in ("index.html", "__init__.py", "missing.js"):
        async with http.get(f"{ui.base}/static/{name}") as response:
            assert response.status == 404, name


async def test_another_host_name_is_refused_even_with_the_token(
    ui: Ui, http: aiohttp.ClientSession
) -> None:
    # DNS rebinding: a page of another site, resolved to 127.0.0.1, sends its own Host.
    port = ui.base.rsplit(":", 1)[1]
    async with http.get(
        ui.base + "/api/pipelines", headers=ui.auth(Host=f"attacker.example:{port}")
    ) as response:
        status, body = await answer(response)
    assert status == 403
    assert "is not served here" in body["error"]
    async with http.get(
        ui.base.replace("127.0.0.1", "localhost") + "/api/pipelines", headers=ui.auth()
    ) as response:
        assert response.status == 200


async def test_a_cross_site_verb_is_refused_and_changes_nothing(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    await hello(api)
    url = ui.base + "/api/pipelines/default/hello/rerun"
    for headers in (
        {"Origin": "http://attacker.example"},  # another site
        {"Origin": "null"},  # a sandboxed frame or a file
        {"Origin": ui.base.replace("127.0.0.1", "localhost")},  # another origin
        {"Sec-Fetch-Site": "cross-site"},
        {},
    ):  # neither header: not a browser we can trust to say
        async with http.post(url, headers=ui.auth(**headers), json={}) as response:
            status, body = await answer(response)
        assert status == 403, headers
        assert "cross-site request refused" in body["error"]
    # A form post (no preflight) from the page's own origin is refused too.
    async with http.post(url, headers=ui.auth(**ui.origin), data="a=b") as response:
        assert response.status == 415
    annotations = (await get(api, "hello"))["metadata"].get("annotations") or {}
    assert "kubesteps.dev/rerun" not in annotations
    # The same verb from the page's origin goes through.
    async with http.post(url, headers=ui.auth(**ui.origin), json={}) as response:
        status, body = await answer(response)
    assert status == 200, body
    annotations = (await get(api, "hello"))["metadata"]["annotations"]
    assert annotations["kubesteps.dev/rerun"]  # a new token
    async with http.post(
        url, headers=ui.auth(**{"Sec-Fetch-Site": "same-origin"}), json={}
    ) as response:
        assert response.status == 200


async def test_the_list_has_a_row_per_pipeline_and_filters(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    await hello(api)
    await namespace(api, "ops")
    other = pipeline("other", [delay("a", 1), delay("b", 1)], namespace="ops")
    other["metadata"]["labels"] = {"team": "web"}
    await api.create(other)
    await set_status(
        api,
        "hello",
        {
            "run": {
                "number": 2,
                "id": "hello-2",
                "phase": "Succeeded",
                "startedAt": "2026-01-01T10:00:00Z",
                "finishedAt": "2026-01-01T10:01:05Z",
            },
            "steps": [{"name": "build", "phase": "Succeeded", "run": 2}],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Succeeded",
                    "message": "",
                    "lastTransitionTime": "2026-01-01T10:01:05Z",
                }
            ],
        },
    )

    async def rows(query: str = "") -> list[dict[str, Any]]:
        async with http.get(f"{ui.base}/api/pipelines{query}", headers=ui.auth()) as response:
            status, body = await answer(response)
        assert status == 200, body
        return list(body["items"])

    every = await rows()
    assert [(r["namespace"], r["name"]) for r in every] == [("default", "hello"), ("ops", "other")]
    first = every[0]
    assert (first["run"], first["phase"], first["done"], first["total"], first["seconds"]) == (
        2,
        "Succeeded",
        1,
        1,
        65.0,
    )
    assert every[1]["phase"] == "Pending"  # no run yet
    assert (every[1]["done"], every[1]["total"]) == (0, 2)
    assert [r["name"] for r in await rows("?namespace=ops")] == ["other"]
    assert [r["name"] for r in await rows("?label=team%3Dweb")] == ["other"]
    assert [r["name"] for r in await rows("?phase=Succeeded")] == ["hello"]


async def test_the_ui_started_for_a_namespace_lists_only_it(
    api: KubeClient, http: aiohttp.ClientSession
) -> None:
    from kubesteps.ui.server import Settings, serving

    await hello(api)
    await namespace(api, "ops")
    await api.create(pipeline("other", [delay("a", 1)], namespace="ops"))
    settings = Settings(namespace="ops")
    async with serving(api, settings) as url:
        base = url.split("/?")[0]
        async with http.get(
            base + "/api/pipelines", headers={"X-Kubesteps-Token": settings.token}
        ) as response:
            body = await response.json()
    assert [r["name"] for r in body["items"]] == ["other"]


async def test_one_pipeline_has_its_tree_history_and_waiting_approvals(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    steps = [
        delay("build", 1),
        {"name": "checks", "parallel": {"steps": [delay("unit", 1), delay("lint", 1)]}},
        {
            "name": "regions",
            "forEach": {
                "items": "['eu', 'us']",
                "step": {"action": "delay", "with": {"duration": "1s"}},
            },
        },
        {"name": "gated", "group": {"steps": [approval("approve-release")]}},
    ]
    await api.create(pipeline("release", steps, **{"finally": [delay("report", 1)]}))
    await set_status(
        api,
        "release",
        {
            "run": {
                "number": 3,
                "id": "release-3",
                "phase": "Running",
                "trigger": "Rerun",
                "startedAt": "2026-01-01T10:00:00Z",
            },
            "history": [
                {
                    "number": 2,
                    "id": "release-2",
                    "phase": "Failed",
                    "reason": "Failed",
                    "startedAt": "2026-01-01T09:00:00Z",
                    "finishedAt": "2026-01-01T09:00:30Z",
                    "failedStep": "unit",
                    "message": "step 'unit' failed",
                }
            ],
            "steps": [
                {
                    "name": "build",
                    "phase": "Succeeded",
                    "attempts": 1,
                    "run": 3,
                    "startedAt": "2026-01-01T10:00:00Z",
                    "finishedAt": "2026-01-01T10:00:01Z",
                },
                {"name": "regions-0", "phase": "Succeeded", "run": 3, "item": "eu"},
                {"name": "regions-1", "phase": "Succeeded", "run": 3, "item": "us"},
                {
                    "name": "approve-release",
                    "phase": "Waiting",
                    "run": 3,
                    "message": "waiting for kubesteps.dev/approve.approve-release",
                },
            ],
        },
    )
    async with http.get(ui.base + "/api/pipelines/default/release", headers=ui.auth()) as response:
        status, body = await answer(response)
    assert status == 200, body
    names = [(n["name"], n["kind"], n["phase"]) for n in body["steps"]]
    assert names == [
        ("build", "action", "Succeeded"),
        ("checks", "parallel", "Pending"),
        ("regions", "forEach", "Pending"),
        ("gated", "group", "Pending"),
    ]
    assert [(c["name"], c["phase"]) for c in body["steps"][1]["children"]] == [
        ("unit", "Pending"),
        ("lint", "Pending"),
    ]
    assert [(c["name"], c["item"]) for c in body["steps"][2]["children"]] == [
        ("regions-0", "eu"),
        ("regions-1", "us"),
    ]
    assert body["steps"][0]["seconds"] == 1.0
    assert [n["name"] for n in body["finally"]] == ["report"]
    assert body["waitingApprovals"] == ["approve-release"]
    assert [h["id"] for h in body["history"]] == ["release-2"]
    assert body["history"][0]["seconds"] == 30.0
    assert (body["runId"], body["done"], body["total"]) == ("release-3", 3, 7)


async def test_a_missing_pipeline_is_a_404_in_words(ui: Ui, http: aiohttp.ClientSession) -> None:
    for path in ("", "/events", "/logs?step=x", "/retry"):
        method = "POST" if path == "/retry" else "GET"
        async with http.request(
            method,
            ui.base + "/api/pipelines/default/nope" + path,
            headers=ui.auth(**ui.origin),
            json={},
        ) as response:
            status, body = await answer(response)
        if path == "/events":  # the Events of a name are a list, empty here
            assert (status, body["items"]) == (200, [])
            continue
        assert status == 404, path
        assert body["error"] == (
            "pipeline 'nope' not found in namespace 'default'"
            " (kubectl get pipelines -n default lists them)"
        )


async def test_events_of_the_pipeline_only_in_time_order(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    await hello(api)
    for index, (name, reason) in enumerate(
        (("hello", "RunSucceeded"), ("other", "Elsewhere"), ("hello", "RunStarted"))
    ):
        await api.create(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"event-{index}", "namespace": "default"},
                "involvedObject": {
                    "kind": "Pipeline",
                    "name": name,
                    "namespace": "default",
                    "apiVersion": API,
                },
                "reason": reason,
                "message": f"{name}: {reason}",
                "type": "Normal",
                "count": 1,
                "lastTimestamp": f"2026-01-01T10:00:0{3 - index}Z",
            }
        )
    async with http.get(
        ui.base + "/api/pipelines/default/hello/events", headers=ui.auth()
    ) as response:
        status, body = await answer(response)
    assert status == 200
    assert [e["reason"] for e in body["items"]] == ["RunStarted", "RunSucceeded"]


async def test_logs_of_a_job_step_come_from_its_pods(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient, k8s_emulator: Emulator
) -> None:
    job_step = {
        "name": "build",
        "action": "job",
        "with": {"image": "busybox", "command": ["echo", "hi"]},
    }
    await api.create(pipeline("hello", [job_step]))
    await set_status(api, "hello", {"run": {"number": 1, "id": "hello-1", "phase": "Running"}})
    url = ui.base + "/api/pipelines/default/hello/logs"
    async with http.get(url + "?step=build", headers=ui.auth()) as response:
        status, body = await answer(response)
    assert status == 200
    assert body["items"] == []
    assert "has no Pod in this run" in body["message"]
    # The Pods of the step's Job carry the Job's template labels (the job action's).
    labels = {
        "kubesteps.dev/pipeline": "hello",
        "kubesteps.dev/step": "build",
        "kubesteps.dev/run": "1",
        "job-name": "hello-build-1-1",
    }
    for pod in ("hello-build-1-1-abcde", "hello-build-1-1-older"):
        await api.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod, "namespace": "default", "labels": labels},
                "spec": {"containers": [{"name": "step", "image": "busybox"}]},
            }
        )
    other = {**labels, "kubesteps.dev/run": "2"}  # another run's Pod is not shown
    await api.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "hello-build-2-1-zzzzz", "namespace": "default", "labels": other},
            "spec": {"containers": [{"name": "step", "image": "busybox"}]},
        }
    )
    async with http.get(url + "?step=build", headers=ui.auth()) as response:
        status, body = await answer(response)
    assert status == 200
    pods = {e["pod"]: e for e in body["items"]}
    assert set(pods) == {"hello-build-1-1-abcde", "hello-build-1-1-older"}
    entry = pods["hello-build-1-1-abcde"]
    assert (entry["job"], entry["pod"]) == ("hello-build-1-1", "hello-build-1-1-abcde")
    assert (entry["text"], entry["message"]) == ("", "")  # nothing written yet
    k8s_emulator.write_pod_log("default", "hello-build-1-1-abcde", "hi\nfrom the job\n")
    async with http.get(url + "?step=build", headers=ui.auth()) as response:
        status, body = await answer(response)
    texts = {e["pod"]: e["text"] for e in body["items"]}
    assert texts == {"hello-build-1-1-abcde": "hi\nfrom the job\n", "hello-build-1-1-older": ""}
    k8s_emulator.inject(
        verb="get",
        resource="pods",
        subresource="log",
        status=403,
        message='pods "hello-build-1-1-abcde" is forbidden: no logs',
    )
    async with http.get(url + "?step=build", headers=ui.auth()) as response:
        status, body = await answer(response)
    assert (status, next(e for e in body["items"] if e["message"])["message"]) == (
        200,
        (
            "you may not get pods/log in namespace default (the server said: pods"
            ' "hello-build-1-1-abcde" is forbidden: no logs)'
        ),
    )
    async with http.get(url + "?step=nope", headers=ui.auth()) as response:
        status, body = await answer(response)
    assert (status, body["error"]) == (404, "pipeline 'hello' has no step 'nope'")
    async with http.get(url, headers=ui.auth()) as response:
        status, body = await answer(response)
    assert (status, body["error"]) == (400, "say which step: the query parameter 'step' is empty")


async def test_refusals_by_rbac_are_messages_naming_what_was_refused(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient, k8s_emulator: Emulator
) -> None:
    await hello(api)
    k8s_emulator.inject(
        verb="patch", resource="pipelines", status=403, message=FORBIDDEN, times=None
    )
    async with http.post(
        ui.base + "/api/pipelines/default/hello/rerun", headers=ui.auth(**ui.origin), json={}
    ) as response:
        status, body = await answer(response)
    assert status == 403
    assert body["error"] == (
        f"you may not patch pipelines in namespace default (the server said: {FORBIDDEN})"
    )
    k8s_emulator.clear_faults()
    k8s_emulator.inject(
        verb="list",
        resource="pipelines",
        status=403,
        times=None,
        message='pipelines.kubesteps.dev is forbidden: User "bob" cannot list',
    )
    for path in ("/api/pipelines", "/api/stream"):
        async with http.get(ui.base + path, headers=ui.auth()) as response:
            status, body = await answer(response)
        assert status == 403, path
        assert body["error"].startswith("you may not list pipelines (the server said: "), path
        assert 'User "bob" cannot list' in body["error"]
    k8s_emulator.clear_faults()
    k8s_emulator.inject(verb="list", resource="events", status=403, message="no events for you")
    async with http.get(
        ui.base + "/api/pipelines/default/hello/events", headers=ui.auth()
    ) as response:
        status, body = await answer(response)
    assert (status, body["error"]) == (
        403,
        "you may not list events in namespace default (the server said: no events for you)",
    )


async def test_each_verb_is_its_api_call(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    await api.create(pipeline("hello", [approval("gate")]))

    async def post(verb: str, **params: Any) -> tuple[int, Any]:
        async with http.post(
            f"{ui.base}/api/pipelines/default/hello/{verb}",
            headers=ui.auth(**ui.origin),
            json=params,
        ) as response:
            return await answer(response)

    async def annotations() -> dict[str, str]:
        return dict((await get(api, "hello"))["metadata"].get("annotations") or {})

    async def refused(verb: str, **params: Any) -> str:
        status, body = await post(verb, **params)
        assert status == 409, (verb, body)
        return str(body["error"])

    # The messages are the shared core's (the CLI prints the same line); the page shows them.
    await set_status(
        api,
        "hello",
        {
            "run": {"number": 1, "id": "hello-1", "phase": "Running"},
            "steps": [{"name": "gate", "phase": "Waiting", "run": 1}],
        },
    )
    assert (await refused("retry")).startswith(
        "cannot retry pipeline 'hello': run hello-1 is Running"
    )
    status, body = await post("approve", step="gate", by="alice", message="looks good")
    assert status == 200, body
    assert body["result"]["patch"] == {
        "metadata": {"annotations": {"kubesteps.dev/approve.gate": "alice@hello-1"}}
    }
    assert (await annotations())["kubesteps.dev/approve.gate"] == "alice@hello-1"
    async with http.get(
        ui.base + "/api/pipelines/default/hello/events", headers=ui.auth()
    ) as response:
        messages = [e["message"] for e in (await response.json())["items"]]
    assert any("looks good" in m for m in messages), messages  # the message, as an Event
    assert (await post("reject", step="gate"))[0] == 200
    assert (await annotations())["kubesteps.dev/approve.gate"] == "reject@hello-1"
    status, body = await post("approve", step="nope")
    assert (status, body["error"]) == (404, "pipeline 'hello' has no step 'nope'")
    assert await post("approve") == (
        400,
        {"error": "say which approval step: the field 'step' is empty"},
    )
    status, body = await post("cancel")
    assert status == 200
    assert body["message"].startswith("asked to cancel run hello-1")
    assert (await annotations())["kubesteps.dev/cancel"]
    assert (await post("suspend"))[0] == 200
    assert (await get(api, "hello"))["spec"]["suspend"] is True
    assert (await refused("suspend")).startswith("cannot suspend pipeline 'hello'")
    assert (await post("resume"))[0] == 200
    assert (await get(api, "hello"))["spec"]["suspend"] is False
    assert (await refused("resume")).startswith("cannot resume pipeline 'hello'")
    await set_status(
        api,
        "hello",
        {
            "run": {"number": 1, "id": "hello-1", "phase": "Failed", "reason": "Rejected"},
            "steps": [{"name": "gate", "phase": "Failed", "run": 1}],
        },
    )
    assert "not waiting for an approval" in await refused("approve", step="gate")
    assert (await refused("cancel")).startswith("cannot cancel pipeline 'hello'")
    first = (await annotations()).get("kubesteps.dev/retry")
    assert (await post("retry"))[0] == 200
    second = (await annotations())["kubesteps.dev/retry"]
    assert second != first  # each verb a new token: the operator acts on each once
    assert (await post("rerun"))[0] == 200
    assert await post("launch") == (
        404,
        {
            "error": "no verb 'launch'; the verbs are approve,"
            " reject, retry, rerun, cancel, suspend,"
            " resume"
        },
    )
    async with http.post(
        f"{ui.base}/api/pipelines/default/hello/retry",
        headers=ui.auth(**ui.origin, **{"Content-Type": "application/json"}),
        data="[1, 2",
    ) as response:
        assert await answer(response) == (400, {"error": "the body is not JSON"})


async def read_events(response: aiohttp.ClientResponse) -> Any:
    """Server-sent events as (event, data) pairs."""
    kind = None
    async for raw in response.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[len("event: ") :]
        elif line.startswith("data: "):
            yield kind, json.loads(line[len("data: ") :])


async def test_the_streams_send_a_snapshot_then_every_change(
    ui: Ui, http: aiohttp.ClientSession, api: KubeClient
) -> None:
    await hello(api)
    await api.create(pipeline("other", [delay("a", 1)]))
    async with asyncio.timeout(20):
        async with (
            http.get(ui.base + "/api/pipelines/default/hello/stream", headers=ui.auth()) as one,
            http.get(ui.base + "/api/stream?namespace=default", headers=ui.auth()) as every,
        ):
            assert one.headers["Content-Type"] == "text/event-stream"
            one_events, every_events = read_events(one), read_events(every)
            kind, data = await anext(one_events)
            assert (kind, data["pipeline"]["name"]) == ("pipeline", "hello")
            assert await anext(every_events) == ("reset", {})
            synced = {(await anext(every_events))[1]["row"]["name"] for _ in range(2)}
            assert synced == {"hello", "other"}

            await set_status(
                api, "other", {"run": {"number": 1, "id": "other-1", "phase": "Running"}}
            )
            await set_status(
                api, "hello", {"run": {"number": 1, "id": "hello-1", "phase": "Succeeded"}}
            )
            kind, data = await anext(every_events)
            assert (kind, data["type"], data["row"]["name"], data["row"]["phase"]) == (
                "row",
                "MODIFIED",
                "other",
                "Running",
            )
            # The stream of one Pipeline skips the others' changes.
            kind, data = await anext(one_events)
            assert (kind, data["pipeline"]["name"], data["pipeline"]["phase"]) == (
                "pipeline",
                "hello",
                "Succeeded",
            )
            await api.delete(API, "Pipeline", "other", "default")
            kinds = []
            while "DELETED" not in kinds:
                kinds.append((await anext(every_events))[1]["type"])
            await api.delete(API, "Pipeline", "hello", "default")
            while True:  # the page of a deleted Pipeline is told so, in words
                kind, data = await anext(one_events)
                if kind == "deleted":
                    break
            assert "it was deleted" in data["error"]
