"""http: one request to a real aiohttp server on 127.0.0.1; credentials from a Secret."""

from __future__ import annotations

import asyncio
import base64
import socket
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from kubesteps.actions.http import (
    ALLOWED_URLS_ANNOTATION,
    BODY_CAP,
    CREDENTIAL_LABEL,
    HTTP_SESSION,
)
from kubesteps.engine import OutcomeKind, RetryPolicy, StepStatus
from kubesteps.kube.client import KubeClient
from kubesteps.testing import Emulator

from .conftest import FakeClock, RunFactory


class Server:
    """The test's HTTP server: fixed routes, and a record of what it was sent."""

    def __init__(self) -> None:
        self.url = ""
        self.received: list[dict[str, Any]] = []
        self.flaky_failures = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ok", self.ok)
        app.router.add_get("/text", self.text)
        app.router.add_get("/big", self.big)
        app.router.add_get("/private", self.private)
        app.router.add_get("/private/{rest:.*}", self.private)
        app.router.add_post("/echo", self.echo)
        app.router.add_get("/missing", self.missing)
        app.router.add_get("/flaky", self.flaky)
        app.router.add_get("/busy", self.busy)
        app.router.add_get("/slow", self.slow)
        app.router.add_get("/moved", self.moved)
        app.router.add_get("/echo-headers", self.echo_headers)
        return app

    async def ok(self, request: web.Request) -> web.Response:
        self.received.append(dict(request.headers))
        return web.json_response(
            {"hello": "world"},
            headers={"X-Request-Id": "r-1", "Set-Cookie": "session=abc", "X-Auth-Token": "t"},
        )

    async def text(self, request: web.Request) -> web.Response:
        return web.Response(text="plain words")

    async def big(self, request: web.Request) -> web.Response:
        return web.json_response({"data": "x" * (BODY_CAP * 4)})

    async def private(self, request: web.Request) -> web.Response:
        self.received.append(dict(request.headers))
        if request.headers.get("Authorization") != "Bearer s3cret":
            return web.Response(status=401, text="who are you?")
        return web.json_response({"secret": "stuff"})

    async def echo(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"contentType": request.content_type, "body": await request.text()}, status=201
        )

    async def missing(self, request: web.Request) -> web.Response:
        return web.Response(status=404, text="no   such\nthing here")

    async def flaky(self, request: web.Request) -> web.Response:
        if self.flaky_failures > 0:
            self.flaky_failures -= 1
            return web.Response(status=503, text="overloaded", headers={"Retry-After": "7"})
        return web.Response(text="recovered")

    async def busy(self, request: web.Request) -> web.Response:
        return web.Response(status=429, text="slow down")

    async def echo_headers(self, request: web.Request) -> web.Response:
        """The request's headers sent back, as some servers do in their answers: JSON for a
        success, text after ``pad`` characters for an error (``?status=N``)."""
        status = int(request.query.get("status", "200"))
        credential = request.headers.get("Authorization", "").rpartition(" ")[2]
        headers = {**request.headers, "X-Seen-B64": base64.b64encode(credential.encode()).decode()}
        if status < 400:
            return web.json_response({"headers": headers})
        lines = [f"{name}: {value}" for name, value in sorted(headers.items())]
        pad = "x" * int(request.query.get("pad", "0"))
        return web.Response(status=status, text=pad + " " + " ".join(lines))

    async def moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def slow(self, request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="too late")


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    server = Server()
    runner = web.AppRunner(server.app(), shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    server.url = f"http://{host}:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()


async def make_secret(
    kube: KubeClient,
    name: str,
    data: dict[str, str],
    *,
    labels: dict[str, str] | None = None,
    allowed_urls: str | None = None,
) -> None:
    """A Secret in ``default``, labelled as an http credential unless ``labels`` says otherwise."""
    encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    metadata: dict[str, Any] = {
        "name": name,
        "labels": {CREDENTIAL_LABEL: "true"} if labels is None else labels,
    }
    if allowed_urls is not None:
        metadata["annotations"] = {ALLOWED_URLS_ANNOTATION: allowed_urls}
    await kube.create(
        {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "data": encoded}, "default"
    )


async def test_a_json_answer_becomes_status_headers_and_parsed_body(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/ok"})
    assert (await run.once()).kind is OutcomeKind.DONE
    outputs = run.state.outputs
    assert outputs is not None
    assert outputs["status"] == 200
    assert outputs["body"] == {"hello": "world"}
    assert outputs["bodyTruncated"] is False
    assert outputs["headers"]["x-request-id"] == "r-1"
    assert outputs["headers"]["content-type"].startswith("application/json")


async def test_answer_headers_that_may_hold_credentials_are_not_kept(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/ok"})
    await run.once()
    assert run.state.outputs is not None
    assert "set-cookie" not in run.state.outputs["headers"]
    assert "x-auth-token" not in run.state.outputs["headers"]


async def test_a_text_answer_is_kept_as_text(make_run: RunFactory, server: Server) -> None:
    run = make_run("http", {"url": f"{server.url}/text"})
    await run.once()
    assert run.state.outputs is not None
    assert run.state.outputs["body"] == "plain words"


async def test_a_large_body_is_cut_to_the_cap_and_flagged(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/big"})
    assert (await run.once()).kind is OutcomeKind.DONE
    outputs = run.state.outputs
    assert outputs is not None
    assert outputs["bodyTruncated"] is True
    assert isinstance(outputs["body"], str)
    assert len(outputs["body"]) == BODY_CAP
    assert outputs["body"].startswith('{"data": "xxx')


async def test_an_object_body_is_sent_as_json(make_run: RunFactory, server: Server) -> None:
    run = make_run(
        "http",
        {"method": "POST", "url": f"{server.url}/echo", "body": {"a": 1}, "expectedStatus": [201]},
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["body"] == {"contentType": "application/json", "body": '{"a": 1}'}


async def test_a_string_body_is_sent_as_is(make_run: RunFactory, server: Server) -> None:
    run = make_run(
        "http",
        {
            "method": "POST",
            "url": f"{server.url}/echo",
            "body": "raw text",
            "headers": {"Content-Type": "text/plain"},
            "expectedStatus": ["2xx"],
        },
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["body"] == {"contentType": "text/plain", "body": "raw text"}


async def test_the_credential_is_read_from_the_secret_and_sent_as_a_header(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(kube, "api-token", {"token": "s3cret\n"})
    run = make_run(
        "http", {"url": f"{server.url}/private", "secretRef": {"name": "api-token", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert server.received[-1]["Authorization"] == "Bearer s3cret"
    assert "s3cret" not in repr(run.state)


ECHOED = "Zq8-s3cret-value-1"


@pytest.mark.parametrize("pad", [0, 180])  # 180: the 200-character snippet cuts the value
async def test_a_credential_an_error_answer_echoes_is_not_in_the_step_message(
    make_run: RunFactory, server: Server, kube: KubeClient, pad: int
) -> None:
    await make_secret(kube, "echoed", {"token": ECHOED})
    run = make_run(
        "http",
        {
            "url": f"{server.url}/echo-headers?status=403&pad={pad}",
            "secretRef": {"name": "echoed", "key": "token"},
        },
    )

    assert (await run.once()).kind is OutcomeKind.FAILED

    message = run.state.message
    assert "answered 403" in message
    assert ECHOED[:6] not in message
    assert base64.b64encode(ECHOED.encode()).decode()[:6] not in message
    if not pad:
        assert "Authorization: <redacted>" in message


async def test_a_credential_a_successful_answer_echoes_is_not_in_the_outputs(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(kube, "echoed", {"token": ECHOED})
    run = make_run(
        "http",
        {"url": f"{server.url}/echo-headers", "secretRef": {"name": "echoed", "key": "token"}},
    )

    assert (await run.once()).kind is OutcomeKind.DONE

    outputs = run.state.outputs
    assert outputs is not None
    assert outputs["body"]["headers"]["Authorization"] == "Bearer <redacted>"
    assert outputs["body"]["headers"]["X-Seen-B64"] == "<redacted>"
    assert ECHOED not in repr(outputs)


async def test_the_credential_header_and_scheme_can_be_chosen(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(kube, "api-key", {"key": "k-123"})
    run = make_run(
        "http",
        {
            "url": f"{server.url}/ok",
            "secretRef": {"name": "api-key", "key": "key", "header": "X-Api-Key", "scheme": ""},
        },
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert server.received[-1]["X-Api-Key"] == "k-123"


async def test_redirects_are_followed(make_run: RunFactory, server: Server) -> None:
    run = make_run("http", {"url": f"{server.url}/moved"})
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["body"] == {"hello": "world"}


async def test_with_a_credential_a_redirect_is_the_answer(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(kube, "api-token", {"token": "s3cret"})
    run = make_run(
        "http",
        {
            "url": f"{server.url}/moved",
            "expectedStatus": ["3xx"],
            "secretRef": {"name": "api-token", "key": "token"},
        },
    )
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["status"] == 302
    assert run.state.outputs["headers"]["location"] == "/ok"
    assert server.received == []


async def test_a_missing_secret_fails_naming_it_and_its_namespace(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run(
        "http", {"url": f"{server.url}/private", "secretRef": {"name": "nope", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == "secretRef: Secret 'nope' in namespace 'default' does not exist"
    assert server.received == []


async def test_a_missing_key_fails_listing_the_keys_there_are(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(kube, "creds", {"user": "u", "password": "p"})
    run = make_run(
        "http", {"url": f"{server.url}/private", "secretRef": {"name": "creds", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "has no key 'token' (its keys: password, user)" in run.state.message


@pytest.mark.parametrize("labels", [{}, {CREDENTIAL_LABEL: "yes"}, {"app": "web"}])
async def test_a_secret_without_the_credential_label_is_never_sent(
    make_run: RunFactory, server: Server, kube: KubeClient, labels: dict[str, str]
) -> None:
    await make_secret(kube, "db-password", {"password": "s3cret"}, labels=labels)
    run = make_run(
        "http",
        {"url": f"{server.url}/private", "secretRef": {"name": "db-password", "key": "password"}},
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        f"secretRef: Secret 'db-password' in namespace 'default' is not labelled "
        f"{CREDENTIAL_LABEL}=true, which a Secret needs before http steps may send it; if it is "
        f"meant for them: kubectl label secret db-password -n default {CREDENTIAL_LABEL}=true"
    )
    assert "password" not in run.state.message.replace("db-password", "")  # nor its keys
    assert server.received == []


@pytest.mark.parametrize(
    ("prefixes", "path"),
    [
        ("{url}/private", "/private"),
        ("{url}/", "/private"),
        ("{url}", "/private"),
        ("https://elsewhere.example, {url}/private", "/private"),
        ("{url}/private/", "/private/v2/items"),
        ("{url}/private, not a url", "/private?page=2"),
    ],
)
async def test_a_secret_may_be_sent_to_the_urls_its_annotation_allows(
    make_run: RunFactory, server: Server, kube: KubeClient, prefixes: str, path: str
) -> None:
    await make_secret(
        kube, "api-token", {"token": "s3cret"}, allowed_urls=prefixes.format(url=server.url)
    )
    run = make_run(
        "http", {"url": f"{server.url}{path}", "secretRef": {"name": "api-token", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.DONE, run.state.message
    assert server.received[-1]["Authorization"] == "Bearer s3cret"


@pytest.mark.parametrize(
    ("prefixes", "url"),
    [
        ("{url}/ok", "{url}/private"),
        ("{url}/priv", "{url}/private"),  # a prefix ends at a path segment
        ("{url}/ok/", "{url}/ok/../private"),  # as sent: /private
        ("{url}/", "http://localhost:{port}/private"),  # another host name
        ("{url}/", "http://127.0.0.1.example.invalid:{port}/private"),
        ("{url}/", "http://127.0.0.1:{port}@example.invalid/private"),  # user info, not host
        ("{url}/", "http://127.0.0.1:1/private"),  # another port
        ("https://127.0.0.1:{port}/", "{url}/private"),  # another scheme
        ("", "{url}/private"),  # present but empty: nowhere
        ("{url}?x=1, 127.0.0.1:{port}", "{url}/private"),  # unusable prefixes allow nothing
    ],
)
async def test_a_secret_is_refused_for_a_url_its_annotation_does_not_allow(
    make_run: RunFactory, server: Server, kube: KubeClient, prefixes: str, url: str
) -> None:
    port = server.url.rpartition(":")[2]
    allowed = prefixes.format(url=server.url, port=port)
    await make_secret(kube, "api-token", {"token": "s3cret"}, allowed_urls=allowed)
    target = url.format(url=server.url, port=port)
    run = make_run("http", {"url": target, "secretRef": {"name": "api-token", "key": "token"}})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message.startswith(
        "secretRef: Secret 'api-token' in namespace 'default' may not be sent to "
    )
    assert f"its annotation {ALLOWED_URLS_ANNOTATION} allows only " in run.state.message
    assert "s3cret" not in run.state.message
    assert server.received == []


async def test_an_unusable_allowed_url_prefix_is_named_in_the_refusal(
    make_run: RunFactory, server: Server, kube: KubeClient
) -> None:
    await make_secret(
        kube,
        "api-token",
        {"token": "s3cret"},
        allowed_urls="api.example.com/v1, https://api.example.com/v1/",
    )
    run = make_run(
        "http", {"url": f"{server.url}/private", "secretRef": {"name": "api-token", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        f"secretRef: Secret 'api-token' in namespace 'default' may not be sent to "
        f"{server.url}/private: its annotation {ALLOWED_URLS_ANNOTATION} allows only "
        "api.example.com/v1, https://api.example.com/v1/ (api.example.com/v1: not an http(s) "
        "URL with a host and no query)"
    )


async def test_a_secret_read_refused_by_rbac_fails_with_a_hint(
    make_run: RunFactory, server: Server, k8s_emulator: Emulator
) -> None:
    k8s_emulator.inject(verb="get", resource="secrets", status=403, times=None)
    run = make_run(
        "http", {"url": f"{server.url}/private", "secretRef": {"name": "creds", "key": "token"}}
    )
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "403 Forbidden" in run.state.message
    assert "lacks this permission" in run.state.message


async def test_a_client_error_status_fails_for_good_with_the_status_and_a_snippet(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/missing?token=hunter2"})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        f"GET {server.url}/missing answered 404, expected 200-299: no such thing here"
    )


async def test_an_unexpected_success_status_is_a_failure_too(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/text", "expectedStatus": [204, "300-399"]})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "answered 200, expected 204, 300-399" in run.state.message


async def test_a_server_error_is_retried_after_its_retry_after(
    make_run: RunFactory, server: Server, clock: FakeClock
) -> None:
    server.flaky_failures = 1
    run = make_run("http", {"url": f"{server.url}/flaky"})
    outcome = await run.once()
    assert outcome.kind is OutcomeKind.RETRY
    assert outcome.delay == 7
    assert run.state.status is StepStatus.RETRYING
    assert "answered 503" in run.state.message
    assert "overloaded" in run.state.message
    clock.advance(7)
    assert (await run.once()).kind is OutcomeKind.DONE
    assert run.state.outputs is not None
    assert run.state.outputs["body"] == "recovered"
    assert run.state.attempts == 2


async def test_throttling_is_retried_until_the_attempts_run_out(
    make_run: RunFactory, server: Server, clock: FakeClock
) -> None:
    run = make_run(
        "http", {"url": f"{server.url}/busy"}, retry=RetryPolicy(limit=2, jitter=timedelta(0))
    )
    assert (await run.once()).kind is OutcomeKind.RETRY
    clock.advance(60)
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "answered 429" in run.state.message


async def test_an_unreachable_server_is_retried(make_run: RunFactory) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = make_run("http", {"url": f"http://127.0.0.1:{port}/x"})
    assert (await run.once()).kind is OutcomeKind.RETRY
    assert run.state.message.startswith(f"attempt 1/3 failed: GET http://127.0.0.1:{port}/x: ")


async def test_no_answer_within_the_timeout_is_retried(
    make_run: RunFactory, server: Server
) -> None:
    run = make_run("http", {"url": f"{server.url}/slow", "timeout": "100ms"})
    assert (await run.once()).kind is OutcomeKind.RETRY
    assert "no answer within 100ms" in run.state.message


async def test_a_shared_session_from_the_extras_is_used_and_left_open(
    make_run: RunFactory, server: Server
) -> None:
    async with aiohttp.ClientSession(headers={"X-Shared": "yes"}) as session:
        run = make_run("http", {"url": f"{server.url}/ok"})
        run.extras[HTTP_SESSION] = session
        assert (await run.once()).kind is OutcomeKind.DONE
        assert server.received[-1]["X-Shared"] == "yes"
        assert not session.closed


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://host:99999/x?token=abc", "Port out of range 0-65535"),
        ("http://[::1/x?token=abc", "Invalid IPv6 URL"),
        (
            "http://127.0.0.1:80.example.invalid/x?token=abc",
            "Invalid URL: port can't be converted to integer",
        ),
    ],
)
async def test_an_invalid_url_fails_before_anything_is_sent_without_showing_it(
    make_run: RunFactory, url: str, why: str
) -> None:
    run = make_run("http", {"url": url, "secretRef": {"name": "api-token", "key": "token"}})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert run.state.message == (
        f"invalid parameters for action 'http': with.url: is not a valid URL: {why}"
    )


async def test_an_inline_authorization_header_is_refused(make_run: RunFactory) -> None:
    run = make_run("http", {"url": "http://127.0.0.1:1/", "headers": {"Authorization": "x"}})
    assert (await run.once()).kind is OutcomeKind.FAILED
    assert "with.headers: " in run.state.message
    assert "secretRef" in run.state.message
