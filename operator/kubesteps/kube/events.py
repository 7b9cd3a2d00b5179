"""Kubernetes Events for a Pipeline, rate-limited so a hot loop cannot flood the API.

Each object gets a token bucket (a burst, then one event per refill interval) and the whole
process another; an event identical to one sent for the same object within the dedupe
window is dropped. Dropped events are counted, never queued: an event is a hint for
humans, the status is the record.

Each Event gets a name of its own, chosen here (the object's name, the time in nanoseconds
and random bits, as client-go's recorder names them), not ``generateName``: a create whose
answer was lost is sent again by the API client, and a name of our own makes that retry
find its first attempt (409 AlreadyExists: stored) instead of storing a second copy.
Messages pass through the redactor first.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.conditions import stamp
from kubesteps.kube.meta import meta_of
from kubesteps.telemetry.redaction import redact

log = logging.getLogger("kubesteps.events")

NAME_LIMIT = 253
MESSAGE_LIMIT = 1024


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """Per-key token buckets with a bounded number of keys (least recently used go first)."""

    def __init__(
        self,
        burst: float,
        per_second: float,
        *,
        keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.per_second = per_second
        self._keys = keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def take(self, key: str) -> bool:
        now = self._clock()
        bucket = self._buckets.pop(key, None) or _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.per_second)
        bucket.updated = now
        self._buckets[key] = bucket
        if len(self._buckets) > self._keys:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return True
        return False


class EventRecorder:
    """Posts ``v1`` Events about objects; see the module docstring for the limits."""

    def __init__(
        self,
        client_factory: Callable[[], KubeClient | None],
        *,
        component: str = "kubesteps",
        instance: str = "",
        per_object: TokenBuckets | None = None,
        overall: TokenBuckets | None = None,
        dedupe_seconds: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self._client_factory = client_factory
        self.component = component
        self.instance = instance
        self._per_object = per_object or TokenBuckets(burst=25, per_second=1 / 5, clock=clock)
        self._overall = overall or TokenBuckets(burst=100, per_second=20, clock=clock)
        self._dedupe_seconds = dedupe_seconds
        self._recent: OrderedDict[tuple[str, str, str], float] = OrderedDict()
        self._clock = clock
        self._rng = rng or random.Random()
        self._pending: set[asyncio.Task[None]] = set()
        self.sent = 0
        self.dropped = 0

    def emit(
        self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False
    ) -> bool:
        """Queue an event for ``obj``; False when a limit dropped it."""
        meta = meta_of(obj)
        uid = meta.uid or f"{meta.namespace}/{meta.name}"
        now = self._clock()
        key = (uid, reason, message)
        last = self._recent.get(key)
        if last is not None and now - last < self._dedupe_seconds:
            self.dropped += 1
            return False
        if not self._per_object.take(uid) or not self._overall.take(""):
            self.dropped += 1
            return False
        self._recent[key] = now
        self._recent.move_to_end(key)
        while len(self._recent) > 10_000:
            self._recent.popitem(last=False)
        client = self._client_factory()
        if client is None:
            return False
        body = self._event(obj, reason, message, warning)
        task = asyncio.ensure_future(self._post(client, body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return True

    async def drain(self) -> None:
        """Wait for the events queued so far (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def _post(self, client: KubeClient, body: Mapping[str, Any]) -> None:
        try:
            await client.create(body)
        except ApiError as error:
            if error.status != 409:
                log.warning("could not post event %s: %s", body.get("reason"), error)
                return
            # The name is this occurrence's own: an earlier attempt, whose answer was lost,
            # stored it.
        except Exception as error:  # an event is best effort: log, never fail a pass
            log.warning(
                "could not post event %s: %s",
                body.get("reason"),
                str(error) or type(error).__name__,
            )
            return
        self.sent += 1

    def _name(self, name: str) -> str:
        """``name.<nanoseconds><random>`` in hex, within the length limit of a name."""
        suffix = f"{time.time_ns():x}{self._rng.getrandbits(32):08x}"
        base = name[: NAME_LIMIT - len(suffix) - 1].rstrip(".-") or "object"
        return f"{base}.{suffix}"

    def _event(
        self, obj: Mapping[str, Any], reason: str, message: str, warning: bool
    ) -> dict[str, Any]:
        meta = meta_of(obj)
        now = stamp(datetime.now(UTC))
        namespace = meta.namespace or "default"
        return {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": self._name(meta.name or "object"), "namespace": namespace},
            "involvedObject": {
                "apiVersion": obj.get("apiVersion"),
                "kind": obj.get("kind"),
                "name": meta.name or None,
                "namespace": namespace,
                "uid": meta.uid or None,
            },
            "reason": reason,
            "message": redact(message)[:MESSAGE_LIMIT],
            "type": "Warning" if warning else "Normal",
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.instance or self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
