"""Rotated tokens: on a 401 the client asks for fresh credentials once and retries once.

The emulator does no authentication, so a tiny server here refuses every request whose
bearer token is not the current one, as the API server does after a token rotates.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiohttp import web

from kubesteps.kube.client import ApiError, Credentials, KubeClient

PATH = "/api/v1/namespaces/default/configmaps/settings"


@dataclass
class TokenServer:
    """Answers ``PATH`` for the ``valid`` token and 401 for anything else."""

    url: str = ""
    valid: str = "new-token"
    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {self.valid}":
            status = {
                "kind": "Status",
                "status": "Failure",
                "reason": "Unauthorized",
                "message": "Unauthorized",
                "code": 401,
            }
            return web.json_response(status, status=401)
        return web.json_response({"kind": "ConfigMap", "data": {"mode": "fast"}})


@pytest_asyncio.fixture
async def server() -> AsyncIterator[TokenServer]:
    token_server = TokenServer()
    app = web.Application()
    app.router.add_get(PATH, token_server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    token_server.url = f"http://127.0.0.1:{port}"
    yield token_server
    await runner.cleanup()


class Refresher:
    """A ``refresh`` callable handing out a given token and counting its calls."""

    def __init__(self, server: TokenServer, token: str) -> None:
        self.server = server
        self.token = token
        self.calls = 0

    def __call__(self) -> Credentials:
        self.calls += 1
        return Credentials(server=self.server.url, token=self.token)


def client_for(server: TokenServer, refresh: Callable[[], Credentials] | None) -> KubeClient:
    return KubeClient(Credentials(server=server.url, token="old-token"), refresh=refresh)


async def test_a_refused_token_is_refreshed_and_the_request_retried(server: TokenServer) -> None:
    refresh = Refresher(server, "new-token")
    async with client_for(server, refresh) as client:
        answer = await client.request("GET", PATH)
        again = await client.request("GET", PATH)

    assert answer["data"] == {"mode": "fast"}
    assert again == answer
    assert refresh.calls == 1
    assert server.seen == ["Bearer old-token", "Bearer new-token", "Bearer new-token"]


async def test_requests_refused_together_refresh_once(server: TokenServer) -> None:
    refresh = Refresher(server, "new-token")
    async with client_for(server, refresh) as client:
        answers = await asyncio.gather(*(client.request("GET", PATH) for _ in range(5)))

    assert [answer["data"] for answer in answers] == [{"mode": "fast"}] * 5
    assert refresh.calls == 1
    assert server.seen.count("Bearer old-token") == 5
    assert server.seen.count("Bearer new-token") == 5


async def test_credentials_still_refused_after_a_refresh_are_a_401(server: TokenServer) -> None:
    refresh = Refresher(server, "also-stale")
    async with client_for(server, refresh) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", PATH)

    assert (caught.value.status, caught.value.reason) == (401, "Unauthorized")
    assert refresh.calls == 1
    assert server.seen == ["Bearer old-token", "Bearer also-stale"]


async def test_without_refresh_a_401_is_raised_at_once(server: TokenServer) -> None:
    async with client_for(server, None) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", PATH)

    assert caught.value.status == 401
    assert server.seen == ["Bearer old-token"]


async def test_a_refresh_that_fails_leaves_the_401_with_the_failure_as_its_cause(
    server: TokenServer,
) -> None:
    def broken() -> Credentials:
        raise OSError("token file is gone")

    async with client_for(server, broken) as client:
        with pytest.raises(ApiError) as caught:
            await client.request("GET", PATH)

    assert caught.value.status == 401
    assert isinstance(caught.value.__cause__, OSError)
    assert server.seen == ["Bearer old-token"]
