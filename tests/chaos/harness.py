"""The chaos suite: the real operator process, behind a fault-injecting proxy, killed at
random moments, and what must still hold afterwards.

One run: an emulator, an echo server for http steps, the proxy (``kubesteps.testing.chaos``)
with one listener per operator replica, and one or two ``kubesteps operator`` processes
(two: with leader election). Over ``duration`` seconds it creates Pipelines (valid ones of
five shapes, a few malformed ones), deletes a few while they run, and SIGKILLs an operator
(the leader, with two) a few times, restarting it at once as Kubernetes would; the harness
plays the Job controller (Jobs complete after a moment) and the garbage collector's judge.
Then it waits for everything to settle and checks:

- every valid Pipeline is Ready, none is stuck;
- every malformed one is ``InvalidSpec`` with a message naming the field;
- no step ran again after its success was stored (http calls and Jobs, seen at the echo
  server and in the emulator's writes);
- no credential (the http Secret's value, the operator's own token, their base64 forms) is
  in any Pipeline, Event or log line;
- no traceback in the logs (every fault here is foreseen);
- Events land (and none is refused as existing);
- every watch that got ``410 Gone`` was followed by a re-list;
- every Job and owned object carries its Pipeline as controller owner, so nothing a deleted
  Pipeline made is left behind;
- with two replicas, no write reached the API server from a replica that did not hold the
  Lease at that moment.

The seed fixes the Pipelines, the schedule of creations, deletions and kills, and which
requests the proxy fails; process timing still varies from run to run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from kubesteps.actions.http import CREDENTIAL_LABEL
from kubesteps.kube.client import Credentials, KubeClient
from kubesteps.kube.conditions import find
from kubesteps.pipeline.crd import crd
from kubesteps.testing import Emulator, write_kubeconfig
from kubesteps.testing.chaos import ChaosProxy, Fault, FaultRates, ProxiedRequest, SeededPlan
from kubesteps.testing.storage import Event
from tests.http_echo import EchoServer, echo_server
from tests.pipeline.malformed import MALFORMED

KUBESTEPS = Path(sys.executable).with_name("kubesteps")
API = "kubesteps.dev/v1alpha1"
NAMESPACE = "default"
LEASE = "kubesteps-operator"
SECRET = "chaos-credential"
LEASE_FLAGS = (
    "--leader-election",
    "--leader-election-namespace",
    NAMESPACE,
    "--leader-election-lease-duration",
    "4",
    "--leader-election-renew-period",
    "1",
    "--leader-election-retry-period",
    "0.3",
)
START_UP = 60.0  # hang guard for an operator process to answer its liveness probe


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    duration: float = 60.0  # seconds over which Pipelines are created, deleted and killed
    pipelines: int = 60  # valid ones
    malformed: int = 4
    deleted: int = 4  # valid ones deleted while they run
    kills: int = 4
    replicas: int = 1  # 2: leader election
    settle: float = 120.0  # hang guard: seconds after the schedule for everything to settle
    rates: FaultRates = field(default_factory=FaultRates)

    def __post_init__(self) -> None:
        if self.replicas not in (1, 2):
            raise ValueError(f"replicas must be 1 or 2, got {self.replicas}")
        if self.deleted > self.pipelines:
            raise ValueError("cannot delete more Pipelines than there are")
        if self.duration <= 0 or self.pipelines < 1:
            raise ValueError("duration must be > 0 and pipelines >= 1")


@dataclass
class Replica:
    label: str
    url: str
    kubeconfig: Path
    log: Path
    health: str = ""
    process: asyncio.subprocess.Process | None = None
    killed: bool = False  # by us, on purpose
    starts: int = 0
    log_offset: int = 0  # where the log of the current start begins


@dataclass
class Report:
    config: ChaosConfig
    problems: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line of figures."""
        f, c = self.figures, self.config
        faults: Counter[Fault] = f.get("faults", Counter())
        exits, unexplained = f.get("exits", 0), f.get("unexplained", 0)
        parts = [
            f"chaos seed={c.seed} replicas={c.replicas} window={c.duration:g}s:"
            f" {f.get('created', 0)} Pipelines ({c.pipelines} valid, {c.malformed} malformed,"
            f" {c.deleted} deleted mid-run)",
            f"ready {f.get('ready', 0)}/{c.pipelines - c.deleted}, invalid reported"
            f" {f.get('invalid', 0)}/{c.malformed}, stuck {f.get('stuck', 0)}, created to"
            f" Ready in {f.get('median_ready', 0.0):.1f}s median,"
            f" {f.get('slowest_ready', 0.0):.1f}s slowest",
            f"step re-runs {f.get('reruns', 0)} (of {f.get('http_calls', 0)} http calls,"
            f" {f.get('jobs', 0)} Jobs)",
            f"kills {f.get('kills', 0)}, exits after a lost Lease {exits - unexplained},"
            f" other exits {unexplained}",
            f"faults: 409 x{faults[Fault.CONFLICT]}, 429 x{faults[Fault.THROTTLE]},"
            f" 5xx x{faults[Fault.SERVER_ERROR]}, lost answers x{faults[Fault.LOST_ANSWER]},"
            f" watch cuts x{faults[Fault.WATCH_CUT]}, 410 x{faults[Fault.WATCH_GONE]}"
            f" (re-listed {f.get('relisted', 0)}) in {f.get('requests', 0)} requests",
            f"Events {f.get('events', 0)} stored, {f.get('event_failures', 0)} not posted",
            f"leaks {f.get('leaks', 0)}, tracebacks {f.get('tracebacks', 0)}, orphans"
            f" {f.get('orphans', 0)} ({f.get('collected', 0)} left to the garbage collector)",
            f"non-leader writes {f.get('rogue_writes', 0)}",
            f"{f.get('elapsed', 0.0):.0f}s in all",
        ]
        return " | ".join(parts)


# -- the workload -----------------------------------------------------------------------------


def _http(name: str, echo: str, pipeline: str, fail: int) -> dict[str, Any]:
    return {
        "name": name,
        "action": "http",
        "retry": {"limit": 10, "backoff": {"initial": "0.5s", "max": "3s"}},
        "with": {
            "url": f"{echo}/calls/{pipeline}/{name}?fail={fail}",
            "secretRef": {"name": SECRET, "key": "token"},
        },
    }


def valid_pipeline(name: str, shape: str, echo: str, rng: random.Random) -> dict[str, Any]:
    def fail() -> int:
        return rng.choice((0, 0, 1, 2))

    steps: list[dict[str, Any]]
    if shape == "chain":
        steps = [
            _http("first", echo, name, fail()),
            {
                "name": "greet",
                "action": "python",
                "with": {"function": "kubesteps.examples.greet", "args": {"who": name}},
            },
            _http("last", echo, name, fail()),
        ]
    elif shape == "job":
        steps = [
            {
                "name": "build",
                "action": "job",
                "with": {"image": "busybox:1.36", "command": ["true"]},
            },
            _http("report", echo, name, fail()),
        ]
    elif shape == "parallel":
        steps = [
            {
                "name": "fan",
                "parallel": {
                    "steps": [
                        {"name": "pause", "action": "delay", "with": {"duration": "1s"}},
                        _http("probe", echo, name, fail()),
                    ]
                },
            },
            _http("after", echo, name, fail()),
        ]
    elif shape == "apply":
        steps = [
            {
                "name": "place",
                "action": "apply",
                "with": {
                    "manifest": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": f"{name}-settings"},
                        "data": {"ready": "yes"},
                    }
                },
            },
            {
                "name": "check",
                "action": "waitFor",
                "with": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": f"{name}-settings",
                    "jsonPath": ".data.ready",
                    "value": "yes",
                },
            },
            _http("notify", echo, name, fail()),
        ]
    else:  # "delay"
        steps = [
            {"name": "wait", "action": "delay", "with": {"duration": f"{rng.choice((1, 2, 3))}s"}},
            _http("done", echo, name, fail()),
        ]
    return {
        "apiVersion": API,
        "kind": "Pipeline",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"chaos": shape}},
        "spec": {"steps": steps},
    }


SHAPES = ("chain", "job", "parallel", "apply", "delay")
# Only the operator can tell these are wrong (the CRD schema admits them), and their
# problem is in the spec (the others are not Pipelines the API would take at all).
OPERATOR_ONLY = [
    case for case in MALFORMED if case.schema is None and case.validate.path.startswith("spec.")
]


# -- the run ----------------------------------------------------------------------------------


class Run:
    def __init__(self, config: ChaosConfig, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.rng = random.Random(config.seed)
        self.credential = f"chaos-{self.rng.getrandbits(64):016x}"
        self.token = f"op-token-{self.rng.getrandbits(64):016x}"
        self.report = Report(config)
        self.emulator = Emulator()
        self.plan = SeededPlan(config.seed, config.rates)
        self.replicas: list[Replica] = []
        self.first_success: dict[tuple[str, str], float] = {}
        self.created_at: dict[str, float] = {}
        self.ready_at: dict[str, float] = {}
        self.job_creates: list[tuple[str, str, float]] = []
        self.rogue_writes: list[str] = []
        self.deleted_uids: set[str] = set()
        self.valid: list[str] = []
        self.malformed: dict[str, str] = {}  # name -> the field its message must name
        self.kills = 0
        self.exits: list[tuple[bool, str]] = []  # (after losing its Lease, what it logged)
        self.proxy: ChaosProxy | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        self.direct: KubeClient | None = None  # the harness's own client, past the proxy

    # -- observation (called synchronously as the emulator stores each write) -------------

    def _on_pipeline(self, event: Event) -> None:
        name = event.obj["metadata"]["name"]
        ready = find((event.obj.get("status") or {}).get("conditions") or [], "Ready")
        if ready and ready["status"] == "True":
            self.ready_at.setdefault(name, time.monotonic())
        for record in (event.obj.get("status") or {}).get("steps") or []:
            if record.get("phase") == "Succeeded":
                self.first_success.setdefault((name, record["name"]), time.monotonic())

    def _on_job(self, event: Event) -> None:
        if event.type != "ADDED":
            return
        labels = event.obj["metadata"].get("labels") or {}
        self.job_creates.append(
            (
                labels.get("kubesteps.dev/pipeline", "?"),
                labels.get("kubesteps.dev/step", "?"),
                time.monotonic(),
            )
        )
        # Playing the Job controller: the Job's pod "runs" for a moment, then succeeds.
        delay = random.Random(event.obj["metadata"]["uid"]).uniform(0.3, 1.5)
        asyncio.get_running_loop().call_later(delay, self._spawn, self._complete(event.obj))

    async def _complete(self, job: dict[str, Any]) -> None:
        meta = job["metadata"]
        status = {
            "status": {
                "succeeded": 1,
                "conditions": [
                    {"type": "Complete", "status": "True", "reason": "Completed", "message": ""}
                ],
            }
        }
        assert self.direct is not None
        await self.direct.patch(
            "batch/v1", "Job", meta["name"], meta["namespace"], status, subresource="status"
        )

    def _on_request(self, request: ProxiedRequest) -> None:
        if self.config.replicas < 2 or not request.write or "/leases" in request.path:
            return
        lease = self.emulator.object("leases", LEASE, NAMESPACE)
        holder = (lease or {}).get("spec", {}).get("holderIdentity")
        if holder != request.label:
            self.rogue_writes.append(
                f"{request.method} {request.path} by {request.label} while {holder} leads"
            )

    def _gone(self, replica: Replica) -> None:
        """A replica's process ended: its watches end with it, and no re-list is owed."""
        if self.proxy is not None:
            pending = self.proxy.record.awaiting_relist
            for key in [k for k in pending if k[0] == replica.label]:
                del pending[key]

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- operators --------------------------------------------------------------------------

    async def _start(self, replica: Replica, http: aiohttp.ClientSession) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        replica.health = f"http://127.0.0.1:{port}/healthz"
        flags = LEASE_FLAGS if self.config.replicas == 2 else ()
        with replica.log.open("ab") as sink:
            replica.log_offset = sink.tell()
            sink.write(f"=== start {replica.starts + 1} of {replica.label}\n".encode())
            sink.flush()
            replica.process = await asyncio.create_subprocess_exec(
                str(KUBESTEPS),
                "operator",
                "--standalone",
                "--liveness",
                replica.health,
                "--metrics-port",
                "0",
                *flags,
                env={
                    **os.environ,
                    "KUBECONFIG": str(replica.kubeconfig),
                    "POD_NAME": replica.label,
                },
                stdout=sink,
                stderr=asyncio.subprocess.STDOUT,
            )
        replica.starts += 1
        replica.killed = False
        async with asyncio.timeout(START_UP):
            while True:
                if replica.process.returncode is not None:
                    return  # the watchdog restarts it and reports the exit
                try:
                    async with http.get(replica.health) as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)

    def _victim(self) -> Replica:
        """The Lease holder (with one replica, the one), or a live replica if it is down."""
        lease = self.emulator.object("leases", LEASE, NAMESPACE)
        holder = (lease or {}).get("spec", {}).get("holderIdentity")
        live = [r for r in self.replicas if r.process is not None and r.process.returncode is None]
        return next((r for r in live if r.label == holder), live[0] if live else self.replicas[0])

    async def _kill(self, http: aiohttp.ClientSession) -> None:
        replica = self._victim()
        process = replica.process
        if process is None or process.returncode is not None:
            return
        replica.killed = True
        process.send_signal(signal.SIGKILL)
        await process.wait()
        self.kills += 1
        self._gone(replica)
        # Mostly back at once (its Lease is still its own: it leads again); sometimes only
        # after the Lease expired, so that the standby takes over.
        long = self.config.replicas == 2 and self.rng.random() < 0.5
        await asyncio.sleep(self.rng.uniform(3.5, 4.5) if long else self.rng.uniform(0.1, 1.0))
        if not self._stopping:
            await self._start(replica, http)

    async def _watchdog(self, http: aiohttp.ClientSession) -> None:
        """Restart an operator that exited on its own (as Kubernetes would), and note it."""
        while not self._stopping:
            for replica in self.replicas:
                process = replica.process
                if (
                    process is not None
                    and process.returncode is not None
                    and not replica.killed
                    and not self._stopping
                ):
                    with replica.log.open("rb") as log:
                        log.seek(replica.log_offset)
                        last_run = log.read().decode(errors="replace")
                    # Leadership lost under faults: the replica stops and exits by design.
                    planned = "leadership was lost" in last_run or "the lease" in last_run
                    tail = " | ".join(last_run.splitlines()[-5:])
                    self.exits.append(
                        (planned, f"{replica.label} exited with {process.returncode}: {tail}")
                    )
                    self._gone(replica)
                    await self._start(replica, http)
            await asyncio.sleep(0.2)

    async def _stop_all(self) -> None:
        self._stopping = True
        for replica in self.replicas:
            process = replica.process
            if process is not None and process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            process = replica.process
            if process is None:
                continue
            try:
                async with asyncio.timeout(15):
                    await process.wait()
            except TimeoutError:
                process.kill()
                await process.wait()
                self.report.problems.append(f"{replica.label} ignored SIGTERM for 15s")

    # -- the schedule -----------------------------------------------------------------------

    def _schedule(self, echo: str) -> list[tuple[float, str, Any]]:
        c, rng = self.config, self.rng
        window = c.duration
        events: list[tuple[float, str, Any]] = []
        names = [f"p{i:03d}" for i in range(c.pipelines)]
        shapes = {name: rng.choice(SHAPES) for name in names}
        created = {name: rng.uniform(0, window * 0.8) for name in names}
        for name in names:
            events.append((created[name], "create", valid_pipeline(name, shapes[name], echo, rng)))
        self.valid = list(names)
        # Deleted while they run, preferably ones that have made objects by then (a Job, an
        # applied ConfigMap), which their deletion must not leave behind.
        makers = [n for n in names if shapes[n] in ("job", "apply")]
        others = [n for n in names if n not in makers]
        victims = rng.sample(makers, min(c.deleted, len(makers)))
        victims += rng.sample(others, c.deleted - len(victims))
        for victim in victims:
            events.append((created[victim] + rng.uniform(0.5, 2.0), "delete", victim))
            self.valid.remove(victim)
        for i in range(c.malformed):
            case = OPERATOR_ONLY[rng.randrange(len(OPERATOR_ONLY))]
            manifest = json.loads(json.dumps(case.manifest))
            name = f"bad{i:02d}"
            manifest["metadata"] = {"name": name, "namespace": NAMESPACE}
            self.malformed[name] = case.validate.path
            events.append((rng.uniform(0, window * 0.8), "create", manifest))
        # One kill in each of as many equal parts of the window, away from the parts' edges,
        # so that each kill finds the operator back up from the one before.
        part = window * 0.85 / max(c.kills, 1)
        for index in range(c.kills):
            start = window * 0.1 + index * part
            events.append((rng.uniform(start + part * 0.2, start + part * 0.8), "kill", None))
        events.sort(key=lambda event: event[0])
        return events

    # -- the whole run ----------------------------------------------------------------------

    async def execute(self) -> Report:
        c = self.config
        began = time.monotonic()
        self.emulator.register_crd(crd())
        self.emulator.observe("pipelines", self._on_pipeline)
        self.emulator.observe("jobs", self._on_job)
        async with (
            self.emulator.serving() as upstream,
            echo_server() as echo,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http,
            KubeClient(Credentials(server=upstream, insecure=True)) as direct,
        ):
            self.direct = direct
            await self._secret(direct)
            proxy = self.proxy = ChaosProxy(upstream, self.plan, observer=self._on_request)
            labels = ["op-a", "op-b"][: c.replicas]
            listeners = [proxy.serving(label) for label in labels]
            urls = [await listener.__aenter__() for listener in listeners]
            try:
                for label, url in zip(labels, urls, strict=True):
                    replica = Replica(
                        label,
                        url,
                        self.workdir / f"{label}.kubeconfig",
                        self.workdir / f"{label}.log",
                    )
                    write_kubeconfig(replica.kubeconfig, url, token=self.token)
                    self.replicas.append(replica)
                await asyncio.gather(*(self._start(r, http) for r in self.replicas))
                watchdog = asyncio.create_task(self._watchdog(http))
                try:
                    schedule_end = await self._play(self._schedule(echo.url), direct, http)
                    await self._settle(schedule_end)
                    self.plan.enabled = False  # the faults stop: anything after is the end
                    await asyncio.sleep(1.0)  # re-lists after the last 410s
                finally:
                    await self._stop_all()
                    watchdog.cancel()
                await self._check(direct, echo, proxy)
            finally:
                for listener in reversed(listeners):
                    await listener.__aexit__(None, None, None)
                await proxy.close()
                for task in list(self._tasks):
                    task.cancel()
        self.report.figures["elapsed"] = time.monotonic() - began
        return self.report

    async def _secret(self, direct: KubeClient) -> None:
        encoded = base64.b64encode(self.credential.encode()).decode()
        await direct.create(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": SECRET,
                    "namespace": NAMESPACE,
                    "labels": {CREDENTIAL_LABEL: "true"},
                },
                "data": {"token": encoded},
            }
        )

    async def _play(
        self,
        events: list[tuple[float, str, Any]],
        direct: KubeClient,
        http: aiohttp.ClientSession,
    ) -> float:
        start = time.monotonic()
        created = 0
        for at, kind, payload in events:
            wait = start + at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if kind == "create":
                await direct.create(payload)
                self.created_at[payload["metadata"]["name"]] = time.monotonic()
                created += 1
            elif kind == "delete":
                body = self.emulator.object("pipelines", payload, NAMESPACE)
                if body is not None:
                    self.deleted_uids.add(body["metadata"]["uid"])
                await direct.delete(API, "Pipeline", payload, NAMESPACE)
            else:  # the schedule goes on while the victim is down
                self._spawn(self._kill(http))
        self.report.figures["created"] = created
        return time.monotonic()

    def _unsettled(self) -> list[str]:
        waiting = []
        for name in self.valid:
            body = self.emulator.object("pipelines", name, NAMESPACE) or {}
            ready = find((body.get("status") or {}).get("conditions", []), "Ready")
            generation = body.get("metadata", {}).get("generation")
            if not (
                ready
                and ready["status"] == "True"
                and ready.get("observedGeneration") == generation
            ):
                waiting.append(name)
        for name in self.malformed:
            body = self.emulator.object("pipelines", name, NAMESPACE) or {}
            ready = find((body.get("status") or {}).get("conditions", []), "Ready")
            if not (ready and ready["reason"] == "InvalidSpec"):
                waiting.append(name)
        return waiting

    async def _settle(self, schedule_end: float) -> None:
        deadline = schedule_end + self.config.settle
        while True:
            if not self._unsettled() or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.1)

    # -- the checks -------------------------------------------------------------------------

    async def _check(self, direct: KubeClient, echo: EchoServer, proxy: ChaosProxy) -> None:
        f, problems = self.report.figures, self.report.problems
        pipelines = await direct.list(API, "Pipeline", NAMESPACE)
        by_name = {p["metadata"]["name"]: p for p in pipelines}

        ready = invalid = 0
        stuck: list[str] = []
        for name in self.valid:
            body = by_name.get(name)
            condition = find(((body or {}).get("status") or {}).get("conditions", []), "Ready")
            if condition and condition["status"] == "True":
                ready += 1
            else:
                steps = [
                    (s.get("name"), s.get("phase"), s.get("message", ""))
                    for s in ((body or {}).get("status") or {}).get("steps") or []
                ]
                stuck.append(f"{name}: {condition} {steps}")
        for name, path in self.malformed.items():
            body = by_name.get(name) or {}
            condition = find((body.get("status") or {}).get("conditions", []), "Ready")
            if condition and condition["reason"] == "InvalidSpec" and path in condition["message"]:
                invalid += 1
            else:
                problems.append(f"malformed {name} not reported naming {path}: {condition}")
        f.update(ready=ready, invalid=invalid, stuck=len(stuck))
        took = sorted(
            self.ready_at[n] - self.created_at[n]
            for n in self.valid
            if n in self.ready_at and n in self.created_at
        )
        if took:
            f.update(median_ready=took[len(took) // 2], slowest_ready=took[-1])
        problems.extend(f"stuck: {line}" for line in stuck)

        reruns = [
            f"http {c.pipeline}/{c.step} called {c.at - self.first_success[key]:.2f}s"
            " after its success was stored"
            for c in echo.calls
            if (key := (c.pipeline, c.step)) in self.first_success
            and c.at > self.first_success[key]
        ]
        reruns += [
            f"Job for {p}/{s} created {at - self.first_success[(p, s)]:.2f}s after its"
            " success was stored"
            for p, s, at in self.job_creates
            if (p, s) in self.first_success and at > self.first_success[(p, s)]
        ]
        f.update(reruns=len(reruns), http_calls=len(echo.calls), jobs=len(self.job_creates))
        problems.extend(reruns)

        events = await direct.list("v1", "Event", NAMESPACE)
        logs = {r.label: r.log.read_text(errors="replace") for r in self.replicas}
        failures = sum(text.count("could not post event") for text in logs.values())
        refused_as_existing = sum(text.count("AlreadyExists") for text in logs.values())
        f.update(events=len(events), event_failures=failures)
        if not events:
            problems.append("no Event was stored")
        if refused_as_existing:
            problems.append(f"{refused_as_existing} log lines say AlreadyExists")

        leaks = self._leaks({"pipelines": pipelines, "events": events}, logs)
        f["leaks"] = len(leaks)
        problems.extend(leaks)

        tracebacks = []
        for label, text in logs.items():
            lines = text.splitlines()
            for index, line in enumerate(lines):
                if line.startswith("Traceback"):
                    context = " | ".join(lines[max(0, index - 1) : index + 12])
                    tracebacks.append(f"traceback in {label}'s log: {context}")
        f["tracebacks"] = len(tracebacks)
        problems.extend(tracebacks)

        gone = proxy.record.faults[Fault.WATCH_GONE]
        waiting = sum(proxy.record.awaiting_relist.values())
        f.update(
            faults=Counter(proxy.record.faults),
            relisted=proxy.record.relisted,
            requests=sum(proxy.record.requests.values()),
        )
        if waiting:
            problems.append(f"{waiting} of {gone} watches that got 410 Gone were never re-listed")

        orphans, collected = await self._orphans(direct, by_name)
        f.update(orphans=len(orphans), collected=collected)
        problems.extend(orphans)

        f["rogue_writes"] = len(self.rogue_writes)
        problems.extend(f"non-leader write: {w}" for w in self.rogue_writes[:20])

        f.update(
            kills=self.kills,
            exits=len(self.exits),
            unexplained=sum(1 for planned, _ in self.exits if not planned),
        )
        problems.extend(f"unexplained exit: {e}" for planned, e in self.exits if not planned)

    def _leaks(self, documents: dict[str, Any], logs: dict[str, str]) -> list[str]:
        forms = set()
        for value in (self.credential, self.token):
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                text = encode(value.encode()).decode()
                forms.update((value, text, text.rstrip("=")))
        found = []
        for what, document in documents.items():
            text = json.dumps(document)
            found += [f"a credential in the stored {what}" for form in forms if form in text]
        for label, text in logs.items():
            found += [f"a credential in {label}'s log" for form in forms if form in text]
        return found

    async def _orphans(self, direct: KubeClient, by_name: dict[str, Any]) -> tuple[list[str], int]:
        """Objects Pipelines made must name their Pipeline as controller owner (so that the
        garbage collector removes them with it); the ones whose owner is gone are counted."""
        alive = {p["metadata"]["uid"] for p in by_name.values()}
        orphans: list[str] = []
        collected = 0
        made = [("Job", j) for j in await direct.list("batch/v1", "Job", NAMESPACE)]
        made += [
            ("ConfigMap", m)
            for m in await direct.list("v1", "ConfigMap", NAMESPACE)
            if m["metadata"]["name"].endswith("-settings")
        ]
        for kind, obj in made:
            owners = [
                o
                for o in obj["metadata"].get("ownerReferences") or []
                if o.get("kind") == "Pipeline" and o.get("controller")
            ]
            uids = {o.get("uid") for o in owners}
            if not uids & (alive | self.deleted_uids):
                orphans.append(
                    f"orphan: {kind} {obj['metadata']['name']} has no Pipeline as controller owner"
                )
            elif not uids & alive:
                collected += 1
        return orphans, collected


async def run_chaos(config: ChaosConfig, workdir: Path) -> Report:
    return await Run(config, workdir).execute()


def seed_from_env(default: int) -> int:
    value = os.environ.get("SEED") or os.environ.get("CHAOS_SEED")
    return int(value) if value else default
