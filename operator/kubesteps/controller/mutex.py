"""``spec.mutex``: at most one run in a namespace holds a named lock at a time.

Each mutex is a ``coordination.k8s.io`` Lease in the Pipeline's namespace, named
``kubesteps-mutex-<name>``. Its holder is a run (``holderIdentity`` ``<pipeline>/<run id>``,
and the annotation ``kubesteps.dev/holder`` with the Pipeline's uid); the runs waiting for
it are the annotation ``kubesteps.dev/queue``, in order of arrival. Every write is a merge
patch conditional on the Lease's resourceVersion, so two passes (of two operators, too)
never both take it.

The holder renews ``renewTime`` on each pass (the reconciler looks at a run that holds a
mutex at least every third of the lease duration) and releases it when its run settles
(succeeded, failed, cancelled), when its Pipeline is deleted, or by expiry: a Lease not
renewed for its duration (the operator was down, a release was lost) is free. A holder
whose Pipeline is gone (or is another object of the same name now), or whose run is over,
is no holder either. A waiter that stopped asking (its Pipeline was deleted, its run
cancelled) drops out of the queue after a lease duration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from kubesteps.kube.client import ApiError, KubeClient
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.runs import FINISHED

log = logging.getLogger("kubesteps.controller.mutex")

LEASE_API = "coordination.k8s.io/v1"
LEASE_PREFIX = "kubesteps-mutex-"
HOLDER_ANNOTATION = "kubesteps.dev/holder"
QUEUE_ANNOTATION = "kubesteps.dev/queue"
LABEL_MUTEX = "kubesteps.dev/mutex"
DEFAULT_LEASE_DURATION = 300.0
# Conflicting writes (another pass took or queued meanwhile) are decided again on a fresh
# read, this many times in a pass; then the pass asks again later.
_ATTEMPTS = 4


def lease_name(mutex: str) -> str:
    return LEASE_PREFIX + mutex


@dataclass(frozen=True)
class Claim:
    """A run that holds, or asks for, a mutex."""

    pipeline: str
    uid: str
    run: str  # the run's id, <pipeline>-<number>

    def to_json(self) -> dict[str, str]:
        return {"pipeline": self.pipeline, "uid": self.uid, "run": self.run}

    @classmethod
    def from_json(cls, value: Any) -> Claim | None:
        if not isinstance(value, dict):
            return None
        try:
            return cls(str(value["pipeline"]), str(value.get("uid") or ""), str(value["run"]))
        except KeyError:
            return None

    def same(self, other: Claim | None) -> bool:
        return other is not None and (self.uid, self.run) == (other.uid, other.run)

    def kin(self, other: Claim | None) -> bool:
        """Whether ``other`` is a run of the same Pipeline (this one, or one it superseded)."""
        return other is not None and (self.uid, self.pipeline) == (other.uid, other.pipeline)


@dataclass(frozen=True)
class Held:
    """How a pass stands with its run's mutexes: all held, or waiting for ``blocked``."""

    blocked: str | None = None
    holder: Claim | None = None
    ahead: int = 0  # runs before this one in the queue

    @property
    def waiting(self) -> bool:
        return self.blocked is not None

    def message(self) -> str:
        if self.blocked is None:
            return ""
        text = f"waiting for mutex {self.blocked!r}"
        if self.holder is not None:
            text += f", held by pipeline {self.holder.pipeline!r} (run {self.holder.run})"
        if self.ahead:
            text += f"; {self.ahead} run{'s' if self.ahead > 1 else ''} ahead in line"
        return text


class Mutexes:
    """Takes, renews and releases the mutexes of runs (one instance per operator)."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        lease_duration: float = DEFAULT_LEASE_DURATION,
    ) -> None:
        self.clock = clock
        self.lease_duration = lease_duration

    async def hold(
        self, kube: KubeClient, namespace: str, claim: Claim, names: Sequence[str]
    ) -> Held:
        """Take (or renew) every mutex of ``names``, in sorted order, up to the first held
        by another run: the run waits in that one's queue, keeping those before it (every
        run takes them in the same order, so no two runs wait for each other)."""
        for name in sorted(set(names)):
            held = await self._hold_one(kube, namespace, claim, name)
            if held.waiting:
                return held
        return Held()

    async def release(
        self, kube: KubeClient, namespace: str, claim: Claim, names: Sequence[str]
    ) -> None:
        """Let go of the mutexes of ``names`` that ``claim`` holds, and leave their queues."""
        for name in sorted(set(names)):
            for _ in range(_ATTEMPTS):
                lease = await kube.get(LEASE_API, "Lease", lease_name(name), namespace)
                if lease is None:
                    break
                holder, queue = _holder(lease), _queue(lease)
                mine = claim.same(holder)
                rest = [entry for entry in queue if not claim.same(Claim.from_json(entry))]
                if not mine and len(rest) == len(queue):
                    break
                patch: dict[str, Any] = {"annotations": {QUEUE_ANNOTATION: json.dumps(rest)}}
                spec: dict[str, Any] = {}
                if mine:
                    patch["annotations"][HOLDER_ANNOTATION] = None
                    spec = {"holderIdentity": None, "acquireTime": None, "renewTime": None}
                if await self._write(kube, lease, patch, spec):
                    if mine:
                        log.info("run %s released mutex %s/%s", claim.run, namespace, name)
                    break

    async def _hold_one(self, kube: KubeClient, namespace: str, claim: Claim, name: str) -> Held:
        for _ in range(_ATTEMPTS):
            now = self.clock()
            lease = await kube.get(LEASE_API, "Lease", lease_name(name), namespace)
            if lease is None:
                if await self._create(kube, namespace, name, claim, now):
                    return Held()
                continue
            holder = _holder(lease)
            spec = lease.get("spec") or {}
            queue = self._live(_queue(lease), now)
            if claim.same(holder):
                if await self._renew(kube, lease, now):
                    return Held()
                continue
            # An earlier run of this Pipeline (superseded by this one) holds it no more.
            free = (
                holder is None
                or claim.kin(holder)
                or self._expired(spec, now)
                or await self._over(kube, namespace, holder)
            )
            # A place in line an earlier run of this Pipeline took is this run's.
            others = [e for e in queue if not claim.kin(Claim.from_json(e))]
            position = next((i for i, e in enumerate(queue) if claim.kin(Claim.from_json(e))), None)
            if free and ((position is None and not others) or position == 0):
                if await self._take(kube, lease, claim, others, now):
                    log.info("run %s took mutex %s/%s", claim.run, namespace, name)
                    return Held()
                continue
            # In line: join the queue, or say that this run is still waiting.
            entry = {**claim.to_json(), "seen": _stamp(now)}
            if position is None:
                since = {**entry, "since": _stamp(now)}
                changed = [*queue, since]
                position = len(queue)
            else:
                old = queue[position]
                if (
                    claim.same(Claim.from_json(old))
                    and not self._stale_soon(old, now)
                    and len(queue) == len(_queue(lease))
                ):
                    return Held(name, None if free else holder, position)
                changed = [*queue[:position], {**old, **entry}, *queue[position + 1 :]]
            if await self._write(
                kube, lease, {"annotations": {QUEUE_ANNOTATION: json.dumps(changed)}}, {}
            ):
                return Held(name, None if free else holder, position)
        # Contended all along: look again at the next pass.
        return Held(name, None, 0)

    # -- the Lease ---------------------------------------------------------------------------

    async def _create(
        self, kube: KubeClient, namespace: str, name: str, claim: Claim, now: datetime
    ) -> bool:
        try:
            await kube.create(
                {
                    "apiVersion": LEASE_API,
                    "kind": "Lease",
                    "metadata": {
                        "name": lease_name(name),
                        "namespace": namespace,
                        "labels": {LABEL_MUTEX: name},
                        "annotations": {
                            HOLDER_ANNOTATION: json.dumps(claim.to_json()),
                            QUEUE_ANNOTATION: "[]",
                        },
                    },
                    "spec": self._held_by(claim, now, transitions=0),
                },
                namespace,
            )
        except ApiError as error:
            if error.status == 409:
                return False  # another run made it first
            raise
        log.info("run %s took mutex %s/%s", claim.run, namespace, name)
        return True

    async def _take(
        self,
        kube: KubeClient,
        lease: dict[str, Any],
        claim: Claim,
        queue: list[dict[str, Any]],
        now: datetime,
    ) -> bool:
        spec = lease.get("spec") or {}
        transitions = int(spec.get("leaseTransitions") or 0) + 1
        return await self._write(
            kube,
            lease,
            {
                "annotations": {
                    HOLDER_ANNOTATION: json.dumps(claim.to_json()),
                    QUEUE_ANNOTATION: json.dumps(queue),
                }
            },
            self._held_by(claim, now, transitions=transitions),
        )

    async def _renew(self, kube: KubeClient, lease: dict[str, Any], now: datetime) -> bool:
        spec = lease.get("spec") or {}
        renewed = _parse(spec.get("renewTime"))
        if renewed is not None and now - renewed < timedelta(seconds=self.lease_duration / 6):
            return True  # renewed lately: no write on every pass
        return await self._write(
            kube,
            lease,
            {},
            {"renewTime": _micro(now), "leaseDurationSeconds": int(self.lease_duration)},
        )

    def _held_by(self, claim: Claim, now: datetime, *, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": f"{claim.pipeline}/{claim.run}",
            "leaseDurationSeconds": int(self.lease_duration),
            "acquireTime": _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": transitions,
        }

    async def _write(
        self,
        kube: KubeClient,
        lease: dict[str, Any],
        metadata: dict[str, Any],
        spec: dict[str, Any],
    ) -> bool:
        """A merge patch conditional on the version read; False when someone wrote first."""
        meta = lease["metadata"]
        patch: dict[str, Any] = {
            "metadata": {**metadata, "resourceVersion": meta["resourceVersion"]}
        }
        if spec:
            patch["spec"] = spec
        try:
            # Not sent again by the client on a lost answer: a second copy would meet our
            # own first one as a conflict, and the pass decides again on a fresh read.
            await kube.patch(
                LEASE_API, "Lease", meta["name"], meta["namespace"], patch, retry=False
            )
        except ApiError as error:
            if error.status in (404, 409):
                return False
            raise
        return True

    # -- who may have it ---------------------------------------------------------------------

    def _expired(self, spec: dict[str, Any], now: datetime) -> bool:
        renewed = _parse(spec.get("renewTime"))
        duration = float(spec.get("leaseDurationSeconds") or self.lease_duration)
        return renewed is None or now > renewed + timedelta(seconds=duration)

    def _live(self, queue: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """The queue without waiters that stopped asking (not seen for a lease duration)."""
        limit = timedelta(seconds=self.lease_duration)
        return [
            entry
            for entry in queue
            if (seen := _parse(entry.get("seen"))) is not None and now - seen <= limit
        ]

    def _stale_soon(self, entry: dict[str, Any], now: datetime) -> bool:
        seen = _parse(entry.get("seen"))
        return seen is None or now - seen > timedelta(seconds=self.lease_duration / 3)

    async def _over(self, kube: KubeClient, namespace: str, holder: Claim) -> bool:
        """Whether the holder's run is no more: its Pipeline is gone (or is another object
        of that name), it is at another run, or its run settled without releasing."""
        try:
            body = await kube.get("kubesteps.dev/v1alpha1", "Pipeline", holder.pipeline, namespace)
        except ApiError as error:
            if error.status == 404:  # Pipelines are not served (kubesteps run): by expiry
                return False
            raise
        if body is None:
            return True
        if holder.uid and meta_of(body).uid != holder.uid:
            return True
        run = (body.get("status") or {}).get("run") or {}
        return run.get("id") not in (None, holder.run) or (
            run.get("id") == holder.run and run.get("phase") in FINISHED
        )


def _holder(lease: dict[str, Any]) -> Claim | None:
    annotations = meta_of(lease).annotations
    if not (lease.get("spec") or {}).get("holderIdentity"):
        return None
    try:
        return Claim.from_json(json.loads(annotations.get(HOLDER_ANNOTATION) or "null"))
    except ValueError:
        return None


def _queue(lease: dict[str, Any]) -> list[dict[str, Any]]:
    annotations = meta_of(lease).annotations
    try:
        queue = json.loads(annotations.get(QUEUE_ANNOTATION) or "[]")
    except ValueError:
        return []
    return (
        [entry for entry in queue if isinstance(entry, dict) and Claim.from_json(entry) is not None]
        if isinstance(queue, list)
        else []
    )


def _micro(when: datetime) -> str:
    """A Lease's MicroTime: UTC, six fractional digits."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_stamp = _micro


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
