"""The Kubernetes API emulator under load: write rate with a watcher attached, and a no-op
kopf operator's throughput.

Both run in one process on loopback: the HTTP client (or kopf's thread) shares the CPU
and the GIL with the emulator, so the figures are a lower bound for a standalone emulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import kopf

from kubesteps.testing import Emulator, run_operator

WRITES = 10_240
WORKERS = 4
WINDOW = 1_000
OBJECTS = 200
NAMESPACE_URL = "/apis/bench.example.dev/v1/namespaces/default/things"
CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "things.bench.example.dev"},
    "spec": {
        "group": "bench.example.dev",
        "scope": "Namespaced",
        "names": {"plural": "things", "singular": "thing", "kind": "Thing"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer", "minimum": 0},
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                    },
                                },
                            },
                            "status": {
                                "type": "object",
                                "x-kubernetes-preserve-unknown-fields": True,
                            },
                        },
                    }
                },
            }
        ],
    },
}
MERGE = {"Content-Type": "application/merge-patch+json"}


def thing(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "bench.example.dev/v1",
        "kind": "Thing",
        "metadata": {"name": name},
        "spec": {"size": 1},
    }


class _Watch:
    """A watch stream that counts the events (or distinct objects) its predicate accepts."""

    def __init__(self, expected: int, accept: Callable[[dict[str, Any]], str | None]) -> None:
        self.expected = expected
        self.accept = accept
        self.seen: set[str] = set()
        self.events = 0
        self.done = asyncio.Event()

    async def run(self, http: aiohttp.ClientSession) -> None:
        async with http.get(NAMESPACE_URL, params={"watch": "true"}) as response:
            async for line in response.content:
                key = self.accept(json.loads(line)) if line.strip() else None
                if key is not None:
                    self.events += 1
                    self.seen.add(key)
                if len(self.seen) >= self.expected:
                    self.done.set()


async def _writer(
    http: aiohttp.ClientSession, worker: int, count: int, stamps: list[float]
) -> None:
    """Creates, then alternately spec patches and status patches of the created object."""
    name = ""
    for index in range(count):
        if index % 3 == 0:
            name = f"w{worker}-{index}"
            response = await http.post(NAMESPACE_URL, json=thing(name))
        elif index % 3 == 1:
            # size index + 1 is never the created size 1: no write is a no-op without an event
            body = json.dumps({"spec": {"size": index + 1}})
            response = await http.patch(f"{NAMESPACE_URL}/{name}", data=body, headers=MERGE)
        else:
            response = await http.patch(
                f"{NAMESPACE_URL}/{name}/status",
                data=json.dumps({"status": {"phase": "Done"}}),
                headers=MERGE,
            )
        if response.status >= 300:
            raise RuntimeError(f"write failed: {response.status} {await response.text()}")
        await response.read()
        stamps.append(time.perf_counter())


async def bench_writes() -> None:
    emulator = Emulator()
    emulator.register_crd(CRD)
    async with emulator.serving() as url, aiohttp.ClientSession(base_url=url) as http:
        watch = _Watch(WRITES, lambda event: event["object"]["metadata"]["resourceVersion"])
        watcher = asyncio.create_task(watch.run(http))
        await emulator.wait_for_watch("things")
        stamps: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(
            *(_writer(http, worker, WRITES // WORKERS, stamps) for worker in range(WORKERS))
        )
        total = time.perf_counter() - start
        with contextlib.suppress(TimeoutError):  # let the watcher drain the last events
            await asyncio.wait_for(watch.done.wait(), timeout=5)
        watcher.cancel()
    first = WINDOW / (stamps[WINDOW - 1] - start)
    last = WINDOW / (stamps[-1] - stamps[-WINDOW - 1])
    print(
        f"writes (create / spec patch / status patch, {WORKERS} clients, 1 watcher):"
        f" {len(stamps)} in {total:.2f}s = {len(stamps) / total:.0f} writes/s"
    )
    print(f"  first {WINDOW}: {first:.0f} writes/s; last {WINDOW}: {last:.0f} writes/s")
    print(f"  watch events received: {watch.events}; requests counted: {emulator.requests.total}")


async def bench_kopf() -> None:
    emulator = Emulator()
    emulator.register_crd(CRD)
    registry = kopf.OperatorRegistry()

    @kopf.on.create("bench.example.dev", "v1", "things", registry=registry)
    def ready(patch: kopf.Patch, **_: Any) -> None:
        patch.status["conditions"] = [{"type": "Ready", "status": "True"}]

    def ready_name(event: dict[str, Any]) -> str | None:
        obj = event["object"]
        return obj["metadata"]["name"] if obj.get("status", {}).get("conditions") else None

    watch = _Watch(OBJECTS, ready_name)
    async with (
        emulator.serving() as url,
        aiohttp.ClientSession(base_url=url) as http,
        run_operator(registry, emulator, wait_for=["things"]),
    ):
        watcher = asyncio.create_task(watch.run(http))
        start = time.perf_counter()
        for index in range(OBJECTS):
            response = await http.post(NAMESPACE_URL, json=thing(f"t{index}"))
            await response.read()
        await asyncio.wait_for(watch.done.wait(), timeout=120)
        total = time.perf_counter() - start
        watcher.cancel()
    print(
        f"kopf no-op operator (status Ready on create): {OBJECTS} objects in {total:.2f}s"
        f" = {OBJECTS / total:.0f} objects/s ({emulator.requests.total} requests)"
    )


def main() -> None:
    asyncio.run(bench_writes())
    asyncio.run(bench_kopf())
