"""The differential harness: the same HTTP calls against the emulator and a real API server.

A scenario is a list of steps; each step is one HTTP request (method, path, body, content
type, Accept) or a watch read to its end. Both servers get the same steps through the same
small aiohttp client, and each answer is reduced to what is comparable:

- the status code, and the body with ``uid``s and timestamps masked, ``managedFields``
  dropped, and ``resourceVersion`` kept as *ordering only*: every object revision seen in
  the run is replaced by its rank (``rv1`` is the oldest), and a list's revision by
  ``>=rvN`` (the newest object revision it covers: a real server's list revision also
  counts writes elsewhere in the cluster);
- an error ``Status`` as its code, reason, ``details`` and causes (field and reason): the
  wording of messages is a known difference (docs/testing.md), not compared;
- a watch as its events in order (type and object);
- the ``Warning`` headers.

A step whose answers are *known* to differ says so (``known=``) with the reason and the
phrase of docs/testing.md that lists it; the test fails when such a difference disappears,
so the list stays true.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import re
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp

JSON = Any
Body = JSON | Callable[["Seen"], JSON]
Query = Mapping[str, str] | Callable[["Seen"], Mapping[str, str]]
TABLE = "application/json;as=Table;g=meta.k8s.io;v=v1"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
# Hang guards for one request and one watch, not speed checks.
REQUEST_TIMEOUT = 30.0
WATCH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Known:
    """A declared difference: why the emulator answers otherwise, and the phrase of
    docs/testing.md that lists it."""

    reason: str
    docs: str


@dataclass(frozen=True)
class Step:
    """One HTTP call. ``path`` may name ``{ns}``; ``body`` and ``query`` may be functions of
    the answers so far (``Seen``), e.g. to send the resourceVersion an earlier step got."""

    name: str
    method: str
    path: str
    body: Body = None
    content_type: str = "application/json"
    accept: str = "application/json"
    query: Query = field(default_factory=dict)
    watch: bool = False
    # What of the answer to compare: a function of the normalised body (default: all of it).
    pick: Callable[[JSON], JSON] | None = None
    known: Known | None = None


@dataclass(frozen=True)
class Scenario:
    name: str
    steps: Sequence[Step]


@dataclass
class Answer:
    code: int
    body: JSON  # a JSON value, or for a watch the list of its events
    warnings: list[str]


class Seen(dict[str, Answer]):
    """The answers so far of one run, by step name."""

    def rv(self, step: str) -> str:
        body = self[step].body
        assert isinstance(body, dict), f"{step}: no object: {body}"
        assert "metadata" in body, f"{step}: no object: {body}"
        return str(body["metadata"]["resourceVersion"])

    def obj(self, step: str) -> dict[str, Any]:
        body = self[step].body
        assert isinstance(body, dict), f"{step}: not an object: {body}"
        return json.loads(json.dumps(body))  # a copy to edit


@dataclass
class Server:
    """Where a run goes: a base URL, and the credentials and CA to reach it with."""

    label: str
    url: str
    token: str | None = None
    ssl_context: ssl.SSLContext | None = None

    def session(self) -> aiohttp.ClientSession:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        connector = aiohttp.TCPConnector(ssl=self.ssl_context) if self.ssl_context else None
        return aiohttp.ClientSession(
            base_url=self.url,
            headers=headers,
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
        )


def _in(namespace: str, value: JSON) -> JSON:
    """``value`` with ``{ns}`` in its strings replaced by the namespace of the run."""
    if isinstance(value, str):
        return value.replace("{ns}", namespace)
    if isinstance(value, list):
        return [_in(namespace, item) for item in value]
    if isinstance(value, dict):
        return {key: _in(namespace, item) for key, item in value.items()}
    return value


async def _call(session: aiohttp.ClientSession, step: Step, seen: Seen, namespace: str) -> Answer:
    body = _in(namespace, step.body(seen) if callable(step.body) else step.body)
    query = _in(namespace, dict(step.query(seen) if callable(step.query) else step.query))
    path = step.path.format(ns=namespace)
    headers = {"Accept": step.accept}
    data: bytes | None = None
    if body is not None:
        headers["Content-Type"] = step.content_type
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    if step.watch:
        query = {"watch": "true", "timeoutSeconds": "1", **query}
        async with (
            asyncio.timeout(WATCH_TIMEOUT),
            session.get(
                path,
                params=query,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=WATCH_TIMEOUT),
            ) as response,
        ):
            events = [json.loads(line) async for line in response.content if line.strip()]
            return Answer(response.status, events, response.headers.getall("Warning", []))
    async with session.request(
        step.method, path, params=query, data=data, headers=headers
    ) as response:
        raw = await response.read()
        try:
            decoded: JSON = json.loads(raw) if raw else None
        except ValueError:
            decoded = raw.decode(errors="replace")
        return Answer(response.status, decoded, response.headers.getall("Warning", []))


async def run(server: Server, scenario: Scenario, namespace: str) -> list[Answer]:
    """Every step of ``scenario`` in order, in ``namespace`` (made first, deleted after)."""
    seen = Seen()
    async with server.session() as session:
        made = await session.post(
            "/api/v1/namespaces",
            json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        )
        assert made.status == 201, f"{server.label}: namespace {namespace}: {await made.text()}"
        try:
            for step in scenario.steps:
                seen[step.name] = await _call(session, step, seen, namespace)
        finally:
            await session.delete(f"/api/v1/namespaces/{namespace}")
    return [seen[step.name] for step in scenario.steps]


# -- normalising --------------------------------------------------------------------------------

_LISTS = re.compile(r".*List$")


def _is_listing(body: JSON) -> bool:
    return isinstance(body, dict) and (
        body.get("kind") == "Table" or bool(_LISTS.match(str(body.get("kind", ""))))
    )


def _objects(body: JSON) -> list[dict[str, Any]]:
    """The objects (with metadata) inside an answer: itself, list items, rows, watch events."""
    if isinstance(body, list):
        return [
            obj
            for event in body
            if isinstance(event, dict)
            for obj in _objects(event.get("object"))
        ]
    if not isinstance(body, dict):
        return []
    if body.get("kind") == "Table":
        return [row["object"] for row in body.get("rows") or [] if "object" in row]
    if _is_listing(body):
        return list(body.get("items") or [])
    return [body] if isinstance(body.get("metadata"), dict) else []


def _listings(body: JSON) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return [
            event["object"]
            for event in body
            if isinstance(event, dict) and _is_listing(event.get("object"))
        ]
    return [body] if _is_listing(body) else []


class Revisions:
    """Object revisions of a run by rank; lists by the newest object revision they cover."""

    def __init__(self, answers: Sequence[Answer]) -> None:
        found = {
            int(obj["metadata"]["resourceVersion"])
            for answer in answers
            for obj in _objects(answer.body)
            if str(obj["metadata"].get("resourceVersion", "")).isdigit()
        }
        self.ranked = sorted(found)
        self.rank = {revision: index + 1 for index, revision in enumerate(self.ranked)}

    def of_object(self, value: str) -> str:
        return f"rv{self.rank[int(value)]}" if value.isdigit() else value

    def of_list(self, value: str) -> str:
        if not value.isdigit():
            return value
        covered = [r for r in self.ranked if r <= int(value)]
        return f">=rv{self.rank[covered[-1]]}" if covered else ">=rv0"


_TIMES = ("creationTimestamp", "deletionTimestamp")


def _metadata(meta: dict[str, Any], revisions: Revisions) -> dict[str, Any]:
    shown = {k: v for k, v in meta.items() if k != "managedFields"}
    if "uid" in shown:
        shown["uid"] = "<uid>"
    for key in _TIMES:
        if key in shown:
            shown[key] = "<time>"
    if "resourceVersion" in shown:
        shown["resourceVersion"] = revisions.of_object(str(shown["resourceVersion"]))
    return shown


def _status(body: dict[str, Any]) -> dict[str, Any]:
    """An error Status: its code, reason and details; causes as (field, reason), sorted."""
    details = dict(body.get("details") or {})
    if "causes" in details:
        details["causes"] = sorted(
            {(c.get("field", ""), c.get("reason", "")) for c in details["causes"]}
        )
        details["causes"] = [list(cause) for cause in details["causes"]]
    details.pop("retryAfterSeconds", None)
    return {
        "kind": "Status",
        "status": body.get("status"),
        "code": body.get("code"),
        "reason": body.get("reason"),
        "details": details,
    }


def normalise(body: JSON, revisions: Revisions) -> JSON:
    if isinstance(body, list):  # a watch's events
        return [
            {"type": e.get("type"), "object": normalise(e.get("object"), revisions)}
            for e in body
            if isinstance(e, dict)
        ]
    if not isinstance(body, dict):
        return body
    if body.get("kind") == "Status" and body.get("status") == "Failure":
        return _status(body)
    shown = dict(body)
    if body.get("kind") == "Status" and isinstance(body.get("details"), dict):
        shown["details"] = {k: ("<uid>" if k == "uid" else v) for k, v in body["details"].items()}
    if body.get("kind") == "Table":
        shown["columnDefinitions"] = [
            {k: c.get(k) for k in ("name", "type", "format", "priority")}
            for c in body.get("columnDefinitions") or []
        ]
        dates = [
            i
            for i, c in enumerate(body.get("columnDefinitions") or [])
            if c.get("type") == "date" or c.get("name") == "Age"
        ]
        shown["rows"] = [
            {
                "cells": ["<age>" if i in dates else cell for i, cell in enumerate(row["cells"])],
                "object": normalise(row.get("object"), revisions),
            }
            for row in body.get("rows") or []
        ]
    elif _is_listing(body):
        shown["items"] = [normalise(item, revisions) for item in body.get("items") or []]
    meta = body.get("metadata")
    if isinstance(meta, dict):
        if _is_listing(body):
            shown["metadata"] = {
                k: (revisions.of_list(str(v)) if k == "resourceVersion" else v)
                for k, v in meta.items()
            }
        else:
            shown["metadata"] = _metadata(meta, revisions)
    return shown


def comparable(step: Step, answer: Answer, revisions: Revisions) -> JSON:
    body = normalise(answer.body, revisions)
    if step.pick is not None and answer.code < 400 and not step.watch:
        body = step.pick(body)
    return {"code": answer.code, "body": body, "warnings": sorted(answer.warnings)}


# -- comparing ----------------------------------------------------------------------------------


def _dump(value: JSON) -> list[str]:
    return json.dumps(value, indent=1, sort_keys=True).splitlines()


def differences(
    scenario: Scenario, emulated: Sequence[Answer], real: Sequence[Answer]
) -> list[str]:
    """One paragraph per step that broke its promise: an undeclared difference (with a diff
    of the two answers), or a declared one that is gone."""
    ours, theirs = Revisions(emulated), Revisions(real)
    problems = []
    for step, mine, actual in zip(scenario.steps, emulated, real, strict=True):
        a, b = comparable(step, mine, ours), comparable(step, actual, theirs)
        where = f"{scenario.name} / {step.name} ({step.method} {step.path})"
        if step.known is None and a != b:
            diff = "\n".join(
                difflib.unified_diff(
                    _dump(a), _dump(b), "emulator", "kube-apiserver", lineterm="", n=2
                )
            )
            problems.append(f"{where}: the emulator answers otherwise\n{diff}")
        elif step.known is not None and a == b:
            problems.append(
                f"{where}: the declared difference ({step.known.reason}) is gone: both answer"
                f" {json.dumps(a)[:300]}; drop `known=` and its entry in docs/testing.md"
                f" ({step.known.docs!r})"
            )
    return problems
