"""Lease-based leader election (coordination.k8s.io/v1), as Kubernetes controllers do it.

Standby replicas poll the Lease until it is free or expired, then take it with a write
conditional on its resourceVersion, so two candidates can never both win. The leader renews
it every ``renew_every`` seconds; if it cannot renew in time it has lost leadership and
must stop (the operator exits and Kubernetes restarts it as a standby). "In time" ends a
margin before the Lease expires (the renew period, or half the time between a renewal and
the expiry when that is shorter; client-go's renew deadline plays the same part), so that
the leader has that long to stop before a standby may take over: work still in flight when
leadership ends must not land after someone else's.

Like client-go, a standby never compares the leader's ``renewTime`` with its own wall
clock (the two nodes' clocks may disagree): it notes when *it* last saw the Lease record
change, and takes over only when the record has stayed the same for a whole lease
duration by its own clock.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from kubesteps.kube.client import ApiError, KubeClient

log = logging.getLogger("kubesteps.leader")

_API = "coordination.k8s.io/v1"
# What a call to the API server may fail with that is worth another try: a refusal, or no
# answer at all (connection refused or reset, timeouts) while the server restarts.
_FAILED_CALL = (ApiError, OSError, aiohttp.ClientError)


def _micro(when: datetime) -> str:
    """client-go's MicroTime: UTC, six fractional digits (the "Z" is only true in UTC)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class LeaseConfig:
    namespace: str
    name: str
    identity: str
    duration: float = 15.0
    renew_every: float = 5.0
    retry_every: float = 2.0


class LeaderElection:
    """Acquire with ``await election.acquire()``, then keep it with ``run_renewals()``."""

    def __init__(
        self,
        client: KubeClient,
        config: LeaseConfig,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.config = config
        self.clock = clock
        self.leading = False
        # The renewTime last written: the others may take the Lease once it is older than
        # the lease duration, so this replica must have stopped leading by then.
        self.renewed_at: datetime | None = None
        # The holder's record as this replica last saw it, and when (by our own clock).
        self._observed: tuple[Any, ...] | None = None
        self._observed_at: datetime | None = None

    async def try_acquire(self) -> bool:
        """One attempt: take the Lease if it is free, expired, or already ours."""
        cfg = self.config
        now = self.clock()
        lease = await self.client.get(_API, "Lease", cfg.name, cfg.namespace)
        spec: dict[str, Any] = {
            "holderIdentity": cfg.identity,
            "leaseDurationSeconds": int(cfg.duration),
            "acquireTime": _micro(now),
            "renewTime": _micro(now),
            "leaseTransitions": 0,
        }
        try:
            if lease is None:
                await self.client.create(
                    {
                        "apiVersion": _API,
                        "kind": "Lease",
                        "metadata": {"name": cfg.name, "namespace": cfg.namespace},
                        "spec": spec,
                    }
                )
            else:
                current = lease.get("spec") or {}
                holder = current.get("holderIdentity")
                if holder and holder != cfg.identity and not self._expired(current, now):
                    return False
                if holder == cfg.identity:
                    spec["acquireTime"] = current.get("acquireTime") or spec["acquireTime"]
                    spec["leaseTransitions"] = current.get("leaseTransitions", 0)
                else:
                    spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
                await self._write(lease, spec)
        except ApiError as error:
            if error.status == 409:
                return False  # another candidate won the race
            raise
        self.leading = True
        self.renewed_at = now
        log.info("acquired lease %s/%s as %s", cfg.namespace, cfg.name, cfg.identity)
        return True

    async def acquire(self) -> None:
        """Wait until this candidate leads."""
        while True:
            try:
                if await self.try_acquire():
                    return
            except _FAILED_CALL as error:
                log.warning("leader election: %s", str(error) or type(error).__name__)
            await asyncio.sleep(self.config.retry_every)

    async def renew(self) -> bool:
        cfg = self.config
        lease = await self.client.get(_API, "Lease", cfg.name, cfg.namespace)
        if lease is None or (lease.get("spec") or {}).get("holderIdentity") != cfg.identity:
            return False
        spec = dict(lease.get("spec") or {})
        now = self.clock()
        spec["renewTime"] = _micro(now)
        try:
            await self._write(lease, spec)
        except ApiError as error:
            if error.status == 409:
                return False
            raise
        self.renewed_at = now
        return True

    async def run_renewals(self) -> None:
        """Renew until leadership is lost; returns then (the caller must stop leading).

        A standby may take the Lease as soon as it expires, so the leader gives up a
        ``margin`` before: a failed renewal is retried only while the retry still comes
        before that, and a renewal still unanswered then is abandoned.
        """
        cfg = self.config
        wait = cfg.renew_every
        while True:
            await asyncio.sleep(wait)
            deadline = (self.renewed_at or self.clock()) + timedelta(
                seconds=cfg.duration - self.margin
            )
            try:
                async with asyncio.timeout(max(0.0, (deadline - self.clock()).total_seconds())):
                    renewed = await self.renew()
            except _FAILED_CALL as error:  # the timeout's TimeoutError is an OSError
                log.warning("could not renew the lease: %s", str(error) or type(error).__name__)
                wait = min(cfg.retry_every, cfg.renew_every)
                if self.clock() + timedelta(seconds=wait) < deadline:
                    continue
                log.error(
                    "could not renew the lease %s in time: stopping %.3gs before it expires",
                    cfg.name,
                    self.time_left(),
                )
                break
            if not renewed:
                log.error("lost the lease %s to another replica", cfg.name)
                break
            wait = cfg.renew_every
        self.leading = False

    @property
    def margin(self) -> float:
        """How long before the Lease expires the leader stops trying to renew it."""
        cfg = self.config
        return min(cfg.renew_every, (cfg.duration - cfg.renew_every) / 2)

    def time_left(self) -> float:
        """Seconds until the Lease this replica last renewed expires (0 if it has)."""
        if self.renewed_at is None:
            return 0.0
        expires = self.renewed_at + timedelta(seconds=self.config.duration)
        return max(0.0, (expires - self.clock()).total_seconds())

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown so a standby takes over at once."""
        if not self.leading:
            return
        cfg = self.config
        try:
            lease = await self.client.get(_API, "Lease", cfg.name, cfg.namespace)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == cfg.identity:
                spec = dict(lease["spec"])
                spec["holderIdentity"] = None
                await self._write(lease, spec)
        except _FAILED_CALL as error:
            log.warning("could not release the lease: %s", str(error) or type(error).__name__)
        self.leading = False

    def _expired(self, spec: dict[str, Any], now: datetime) -> bool:
        """Whether the holder has not renewed for a lease duration, as seen from here."""
        record = (
            spec.get("holderIdentity"),
            spec.get("renewTime"),
            spec.get("acquireTime"),
            spec.get("leaseDurationSeconds"),
        )
        if record != self._observed or self._observed_at is None:
            self._observed, self._observed_at = record, now
            return False
        duration = float(spec.get("leaseDurationSeconds") or self.config.duration)
        return now > self._observed_at + timedelta(seconds=duration)

    async def _write(self, lease: dict[str, Any], spec: dict[str, Any]) -> None:
        cfg = self.config
        patch = {
            "metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
            "spec": spec,
        }
        try:
            await self.client.patch(_API, "Lease", cfg.name, cfg.namespace, patch)
        except ApiError as error:
            if error.status != 409:
                raise
            # The API client sends a write again when its answer was lost; if the first one
            # was stored, the second meets it as a conflict. Ours, then, not a rival's.
            current = await self.client.get(_API, "Lease", cfg.name, cfg.namespace)
            stored = (current or {}).get("spec") or {}
            if any(stored.get(key) != spec.get(key) for key in ("holderIdentity", "renewTime")):
                raise


async def stop_within(
    task: asyncio.Task[Any], seconds: float, *, hard_exit: Callable[[int], object] = os._exit
) -> None:
    """End ``task`` (already told to stop) within ``seconds``, or end the process.

    After a lost Lease, work still running here would overlap with the new leader's: the
    first half of the time is the task's to stop by itself, then it is cancelled, and if it
    has still not ended when the time is up the process exits at once (status 1), without
    running ``finally`` blocks that could hang too.
    """
    done, _ = await asyncio.wait({task}, timeout=seconds / 2)
    if not done:
        log.error("still running %.1fs after leadership was lost: cancelling", seconds / 2)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=seconds / 2)
    if not done:
        log.critical("did not stop within %.1fs after leadership was lost: exiting", seconds)
        hard_exit(1)
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("stopped with an error after leadership was lost", exc_info=task.exception())
