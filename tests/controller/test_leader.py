"""Lease-based leader election against the emulator's coordination.k8s.io/v1 Leases."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio

from kubesteps.controller.leader import LeaderElection, LeaseConfig, stop_within
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.testing import Emulator
from kubesteps.testing.chaos import ChaosProxy, Decision, Fault, ProxiedRequest

LEASES = "coordination.k8s.io/v1"
# client-go's metav1.MicroTime: RFC 3339 in UTC with exactly six fractional digits.
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
START = datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)


class Clock:
    """Wall time that moves when the test says so (and, if ``running``, as time passes)."""

    def __init__(self, now: datetime = START, *, running: bool = False) -> None:
        self.now = now
        self.started = time.monotonic() if running else None

    def __call__(self) -> datetime:
        if self.started is None:
            return self.now
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def micro(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest_asyncio.fixture
async def client(k8s_emulator: Emulator) -> AsyncIterator[KubeClient]:
    assert k8s_emulator.url is not None
    async with KubeClient(Credentials(server=k8s_emulator.url, insecure=True)) as kube:
        yield kube


@pytest.fixture
def clock() -> Clock:
    return Clock()


def candidate(
    client: KubeClient, identity: str, clock: Clock, *, duration: float = 15, **timings: float
) -> LeaderElection:
    config = LeaseConfig("default", "kubesteps-operator", identity, duration=duration, **timings)
    return LeaderElection(client, config, clock=clock)


def lease_spec(emulator: Emulator) -> dict[str, Any]:
    lease = emulator.object("leases", "kubesteps-operator", "default")
    assert lease is not None, "no Lease was written"
    return dict(lease["spec"])


async def until(check: Callable[[], bool]) -> None:
    """Poll until ``check`` holds; the timeout only guards against a hang."""
    async with asyncio.timeout(5):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


def lease_version(emulator: Emulator) -> str:
    lease = emulator.object("leases", "kubesteps-operator", "default")
    assert lease is not None
    return str(lease["metadata"]["resourceVersion"])


async def test_the_first_candidate_creates_the_lease_as_client_go_writes_it(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock)

    assert await alpha.try_acquire()

    spec = lease_spec(k8s_emulator)
    assert spec == {
        "holderIdentity": "alpha",
        "leaseDurationSeconds": 15,
        "acquireTime": "2026-03-01T12:00:00.250000Z",
        "renewTime": "2026-03-01T12:00:00.250000Z",
        "leaseTransitions": 0,
    }
    assert MICRO_TIME.match(spec["renewTime"])
    assert alpha.leading


async def test_times_are_written_in_utc_whatever_zone_the_clock_reports(
    client: KubeClient, k8s_emulator: Emulator
) -> None:
    clock = Clock(datetime(2026, 3, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2))))

    assert await candidate(client, "alpha", clock).try_acquire()

    assert lease_spec(k8s_emulator)["renewTime"] == "2026-03-01T12:00:00.000000Z"


async def test_a_second_candidate_cannot_take_a_fresh_lease(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "alpha", clock).try_acquire()
    version = lease_version(k8s_emulator)
    beta = candidate(client, "beta", clock)

    clock.advance(14.9)
    assert not await beta.try_acquire()

    assert lease_spec(k8s_emulator)["holderIdentity"] == "alpha"
    assert lease_version(k8s_emulator) == version, "a standby must not write a held Lease"
    assert not beta.leading


async def test_an_expired_lease_is_taken_over_and_the_transition_counted(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "alpha", clock).try_acquire()
    beta = candidate(client, "beta", clock)
    assert not await beta.try_acquire()  # beta sees alpha's record and starts its own clock

    clock.advance(15.1)
    assert await beta.try_acquire()

    spec = lease_spec(k8s_emulator)
    assert spec["holderIdentity"] == "beta"
    assert spec["leaseTransitions"] == 1
    assert spec["acquireTime"] == spec["renewTime"] == micro(clock.now)


async def test_expiry_follows_the_duration_the_holder_wrote(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "alpha", clock, duration=60).try_acquire()
    beta = candidate(client, "beta", clock, duration=15)
    assert not await beta.try_acquire()

    clock.advance(30)
    assert not await beta.try_acquire()
    clock.advance(31)
    assert await beta.try_acquire()

    assert lease_spec(k8s_emulator)["leaseDurationSeconds"] == 15


async def test_renewing_moves_the_renew_time_and_keeps_the_lease(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock)
    assert await alpha.try_acquire()
    acquired = micro(clock.now)
    beta = candidate(client, "beta", clock)

    clock.advance(10)
    assert await alpha.renew()
    clock.advance(10)  # 20 s after acquiring, 10 s after the renewal

    assert not await beta.try_acquire()
    spec = lease_spec(k8s_emulator)
    assert spec["holderIdentity"] == "alpha"
    assert spec["acquireTime"] == acquired
    assert spec["renewTime"] == micro(clock.now - timedelta(seconds=10))
    assert spec["leaseTransitions"] == 0


async def test_a_restarted_holder_takes_its_own_lease_back_without_a_transition(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "alpha", clock).try_acquire()
    acquired = micro(clock.now)

    clock.advance(5)
    assert await candidate(client, "alpha", clock).try_acquire()

    spec = lease_spec(k8s_emulator)
    assert spec["acquireTime"] == acquired
    assert spec["renewTime"] == micro(clock.now)
    assert spec["leaseTransitions"] == 0


async def test_a_renewal_after_someone_else_took_the_lease_fails(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock)
    assert await alpha.try_acquire()
    beta = candidate(client, "beta", clock)
    assert not await beta.try_acquire()
    clock.advance(16)
    assert await beta.try_acquire()
    version = lease_version(k8s_emulator)

    assert not await alpha.renew()

    assert lease_spec(k8s_emulator)["holderIdentity"] == "beta"
    assert lease_version(k8s_emulator) == version


async def test_of_two_candidates_racing_for_an_expired_lease_exactly_one_wins(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "old", clock).try_acquire()
    async with (
        KubeClient(client.credentials) as other_client,
    ):
        alpha = candidate(client, "alpha", clock)
        beta = candidate(other_client, "beta", clock)
        # Both learn the Lease's resource first, so the race below is GET, GET, PATCH, PATCH.
        assert not await alpha.try_acquire()
        assert not await beta.try_acquire()
        clock.advance(16)
        k8s_emulator.requests.reset()

        won = await asyncio.gather(alpha.try_acquire(), beta.try_acquire())

    assert sorted(won) == [False, True]
    winner = "alpha" if won[0] else "beta"
    spec = lease_spec(k8s_emulator)
    assert spec["holderIdentity"] == winner
    assert spec["leaseTransitions"] == 1
    # Both read the same resourceVersion and both wrote: the second write got 409.
    assert k8s_emulator.requests.count("patch", "leases.coordination.k8s.io") == 2
    assert [alpha.leading, beta.leading] == list(won)


async def test_of_two_candidates_creating_the_lease_exactly_one_wins(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    async with KubeClient(client.credentials) as other_client:
        alpha = candidate(client, "alpha", clock)
        beta = candidate(other_client, "beta", clock)

        won = await asyncio.gather(alpha.try_acquire(), beta.try_acquire())

    assert sorted(won) == [False, True]
    assert lease_spec(k8s_emulator)["holderIdentity"] == ("alpha" if won[0] else "beta")


async def test_release_frees_the_lease_for_a_standby_at_once(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock)
    assert await alpha.try_acquire()
    beta = candidate(client, "beta", clock)

    await alpha.release()

    assert not alpha.leading
    assert not lease_spec(k8s_emulator).get("holderIdentity")
    clock.advance(1)  # far from expiry: only the release lets beta in
    assert await beta.try_acquire()
    spec = lease_spec(k8s_emulator)
    assert spec["holderIdentity"] == "beta"
    assert spec["leaseTransitions"] == 1


async def test_release_by_a_candidate_that_does_not_lead_writes_nothing(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    assert await candidate(client, "alpha", clock).try_acquire()
    version = lease_version(k8s_emulator)

    await candidate(client, "beta", clock).release()

    assert lease_spec(k8s_emulator)["holderIdentity"] == "alpha"
    assert lease_version(k8s_emulator) == version


async def test_a_lease_released_by_client_go_is_free(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    # client-go releases by writing an empty holder and a one-second duration.
    await client.create(
        {
            "apiVersion": LEASES,
            "kind": "Lease",
            "metadata": {"name": "kubesteps-operator", "namespace": "default"},
            "spec": {
                "holderIdentity": "",
                "leaseDurationSeconds": 1,
                "leaseTransitions": 3,
                "acquireTime": micro(clock.now),
                "renewTime": micro(clock.now),
            },
        }
    )

    assert await candidate(client, "beta", clock).try_acquire()

    assert lease_spec(k8s_emulator)["leaseTransitions"] == 4


async def test_renewals_end_when_another_replica_holds_the_lease(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock, renew_every=0.01)
    assert await alpha.try_acquire()
    renewals = asyncio.create_task(alpha.run_renewals())
    await client.patch(
        LEASES, "Lease", "kubesteps-operator", "default", {"spec": {"holderIdentity": "beta"}}
    )

    async with asyncio.timeout(5):  # a hang guard: the renewal loop checks every 10 ms
        await renewals

    assert not alpha.leading
    assert lease_spec(k8s_emulator)["holderIdentity"] == "beta"


async def test_renewals_outlast_failures_shorter_than_the_lease(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock, renew_every=0.01)
    assert await alpha.try_acquire()
    fault = k8s_emulator.inject(verb="patch", resource="leases", status=500, times=3)
    renewals = asyncio.create_task(alpha.run_renewals())
    try:
        await until(lambda: fault.hits >= 1)
        clock.advance(10)  # failing for 10 s of a 15 s lease: not lost yet
        await until(lambda: fault.hits == 3)
        await until(lambda: lease_spec(k8s_emulator)["renewTime"] == micro(clock.now))

        assert not renewals.done()
        assert alpha.leading
    finally:
        renewals.cancel()


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_renewals_end_when_they_keep_failing_past_the_lease_duration(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock, renew_every=0.01)
    assert await alpha.try_acquire()
    fault = k8s_emulator.inject(verb="patch", resource="leases", status=500, times=None)
    renewals = asyncio.create_task(alpha.run_renewals())
    await until(lambda: fault.hits >= 3)
    assert not renewals.done(), "failures within the lease duration must not end leadership"

    clock.advance(15.1)
    async with asyncio.timeout(5):
        await renewals

    assert not alpha.leading


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_acquire_keeps_trying_while_the_api_server_is_unreachable_or_failing(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on, until the emulator does
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    emulator = Emulator()
    async with KubeClient(Credentials(server=f"http://127.0.0.1:{port}")) as kube:
        alpha = candidate(kube, "alpha", clock, retry_every=0.01)
        acquiring = asyncio.create_task(alpha.acquire())
        try:
            while sum("leader election" in r.getMessage() for r in caplog.records) < 2:
                assert not acquiring.done(), acquiring  # an unreachable server is no crash
                await asyncio.sleep(0.01)
            fault = emulator.inject(verb="get", resource="leases", status=503, times=2)
            async with emulator.serving(port=port):
                async with asyncio.timeout(5):
                    await acquiring
                assert fault.hits == 2
                lease = emulator.object("leases", "kubesteps-operator", "default")
                assert lease is not None
                assert lease["spec"]["holderIdentity"] == "alpha"
        finally:
            acquiring.cancel()


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_leader_that_cannot_renew_gives_up_before_a_standby_may_take_over(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock, renew_every=0.01, retry_every=0.01)
    assert await alpha.try_acquire()
    beta = candidate(client, "beta", clock)
    fault = k8s_emulator.inject(verb="patch", resource="leases", status=500, times=None)
    renewals = asyncio.create_task(alpha.run_renewals())
    await until(lambda: fault.hits >= 1)

    # The next retry would come after the Lease expired for the others: stop now, or two
    # replicas would lead at once for a while.
    clock.advance(14.995)
    async with asyncio.timeout(5):
        await renewals

    assert not alpha.leading
    k8s_emulator.clear_faults()
    assert not await beta.try_acquire(), "the Lease is still valid: no one else leads yet"


async def test_a_renewal_whose_answer_was_lost_is_still_a_renewal(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    """The client sends the renewal again; it meets the first, stored one as a conflict."""

    def lose_the_first_patch(request: ProxiedRequest) -> Decision:
        if request.method == "PATCH" and not proxy.record.faults:
            return Decision(Fault.LOST_ANSWER)
        return Decision()

    assert k8s_emulator.url is not None
    proxy = ChaosProxy(k8s_emulator.url, lose_the_first_patch)
    async with (
        proxy.serving() as url,
        KubeClient(Credentials(server=url, insecure=True)) as proxied,
    ):
        alpha = candidate(proxied, "alpha", clock)
        assert await alpha.try_acquire()
        clock.advance(5)

        assert await alpha.renew()
    await proxy.close()

    assert proxy.record.faults[Fault.LOST_ANSWER] == 1
    assert lease_spec(k8s_emulator)["renewTime"] == micro(clock.now)


@pytest.mark.parametrize(
    ("duration", "renew_every", "margin"),
    [
        (15, 5, 5),
        (15, 10, 2.5),
        (3, 1, 1),
        (15, 0.01, 0.01),
    ],
)
def test_the_margin_is_the_renew_period_or_half_the_time_left_after_a_renewal(
    client: KubeClient, clock: Clock, duration: float, renew_every: float, margin: float
) -> None:
    alpha = candidate(client, "alpha", clock, duration=duration, renew_every=renew_every)
    assert alpha.margin == margin


@pytest.mark.slow  # waits seconds of real time (backoffs, leases, whole runs)
async def test_a_leader_that_cannot_renew_stops_a_margin_before_the_lease_expires(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    alpha = candidate(client, "alpha", clock, duration=3, renew_every=1, retry_every=0.01)
    assert await alpha.try_acquire()
    fault = k8s_emulator.inject(verb="patch", resource="leases", status=500, times=None)
    renewals = asyncio.create_task(alpha.run_renewals())
    await until(lambda: fault.hits >= 1)

    clock.advance(2)  # 3 s of Lease less the 1 s margin: time to stop, a second to do it in
    async with asyncio.timeout(10):
        await renewals

    assert not alpha.leading
    assert alpha.time_left() == 1.0


async def test_a_renewal_that_hangs_is_abandoned_before_the_lease_expires(
    client: KubeClient,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # reads the request, never answers, until the client hangs up
        writer.close()

    clock = Clock(running=True)
    alpha = candidate(client, "alpha", clock, renew_every=0.01, retry_every=0.01)
    assert await alpha.try_acquire()
    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, KubeClient(Credentials(server=f"http://127.0.0.1:{port}")) as hanging:
        alpha.client = hanging  # the API server stops answering while alpha leads
        clock.advance(14.5)  # half a second of the lease is left

        async with asyncio.timeout(5):  # a hang guard: the client's own timeout is 30 s
            await alpha.run_renewals()

    assert not alpha.leading


async def test_a_standby_judges_expiry_by_its_own_clock_not_the_leaders(
    client: KubeClient, clock: Clock, k8s_emulator: Emulator
) -> None:
    # The leader's clock is an hour behind: every renewTime it writes looks long expired to
    # the standby. What counts is that the record keeps changing.
    behind = Clock(clock.now - timedelta(hours=1))
    alpha = candidate(client, "alpha", behind)
    assert await alpha.try_acquire()
    beta = candidate(client, "beta", clock)

    for _ in range(5):
        assert not await beta.try_acquire()
        clock.advance(10)
        behind.advance(10)
        assert await alpha.renew()

    assert lease_spec(k8s_emulator)["holderIdentity"] == "alpha"
    # alpha stops renewing: beta sees its last record, and a whole duration later takes over.
    assert not await beta.try_acquire()
    clock.advance(15.1)
    assert await beta.try_acquire()


async def test_time_left_counts_down_from_the_last_renewal(
    client: KubeClient, clock: Clock
) -> None:
    alpha = candidate(client, "alpha", clock)
    assert alpha.time_left() == 0.0, "a candidate that never led has no time left"
    assert await alpha.try_acquire()
    assert alpha.time_left() == 15.0
    clock.advance(10)
    assert alpha.time_left() == 5.0
    clock.advance(10)
    assert alpha.time_left() == 0.0


class Exits:
    """A stand-in for ``os._exit`` that remembers the status instead of ending the tests."""

    def __init__(self) -> None:
        self.codes: list[int] = []

    def __call__(self, code: int) -> None:
        self.codes.append(code)


async def test_a_task_that_stops_when_told_is_awaited_and_nothing_more() -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(stop.wait())
    stop.set()
    exits = Exits()

    await stop_within(task, 30, hard_exit=exits)

    assert task.done()
    assert not task.cancelled()
    assert exits.codes == []


async def test_a_task_that_does_not_stop_by_itself_is_cancelled() -> None:
    task = asyncio.create_task(asyncio.Event().wait())  # ignores any stop flag
    exits = Exits()

    await stop_within(task, 0.1, hard_exit=exits)

    assert task.cancelled()
    assert exits.codes == []


async def test_a_task_that_outlives_its_cancellation_ends_the_process() -> None:
    release = asyncio.Event()
    cancels: list[int] = []

    async def stubborn() -> None:
        while not release.is_set():
            try:
                await release.wait()
            except asyncio.CancelledError:
                cancels.append(1)  # swallowed, as a handler stuck in cleanup would

    task = asyncio.create_task(stubborn())
    exits = Exits()

    await stop_within(task, 0.1, hard_exit=exits)

    assert exits.codes == [1]
    assert cancels == [1]
    release.set()
    await task
