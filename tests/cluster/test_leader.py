"""Two operator processes elect one leader through a real coordination.k8s.io Lease, as
the chart runs them with ``leaderElection.enabled`` (its Role allows exactly this Lease);
killing the leader (SIGKILL: no clean release) hands over to the standby."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from kubesteps.testing.control_plane import ApiStatusError, ControlPlane

from .conftest import (
    IDENTITY_KINDS,
    OPERATOR_VALUES,
    RELEASE_NAMESPACE,
    Account,
    Operator,
    apply,
    container_args,
    get_pipeline,
    of_kind,
    pipeline,
    ready,
    render_chart,
    service_account_kubeconfig,
    wait_until,
)

LEASE = f"/apis/coordination.k8s.io/v1/namespaces/{RELEASE_NAMESPACE}/leases/kubesteps-operator"
# Short Lease timings, so the hand-over takes seconds (the chart keeps the defaults: 15 s).
QUICK = [
    "--leader-election-lease-duration",
    "3",
    "--leader-election-renew-period",
    "1",
    "--leader-election-retry-period",
    "0.2",
]


def lease(cp: ControlPlane) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = cp.request("GET", LEASE)
    except ApiStatusError as error:
        if error.status == 404:
            return None
        raise
    return found


def holder(cp: ControlPlane) -> str | None:
    found = lease(cp)
    return None if found is None else found["spec"].get("holderIdentity")


def greet(name: str, namespace: str) -> dict[str, Any]:
    return pipeline(
        name,
        namespace,
        [
            {
                "name": "greet",
                "action": "python",
                "with": {"function": "kubesteps.examples.greet", "args": {"who": name}},
            }
        ],
    )


def until_ready(cp: ControlPlane, namespace: str, name: str, *operators: Operator) -> None:
    wait_until(
        lambda: ready(get_pipeline(cp, namespace, name)),
        f"{name} Ready",
        logs=lambda: "\n".join(f"--- {o.name}:\n{o.output()[-3000:]}" for o in operators),
    )


def test_one_leader_works_and_the_standby_takes_over_when_it_is_killed(
    control_plane: ControlPlane,
    operator_account: Account,
    namespace: str,
    operators: Callable[..., Operator],
) -> None:
    cp = control_plane
    if lease(cp) is not None:
        cp.request("DELETE", LEASE)
    args = [*container_args(render_chart(cp, OPERATOR_VALUES)), *QUICK]
    assert "--leader-election" in args

    first = operators("op-a", args, kubeconfig=operator_account.kubeconfig)
    wait_until(lambda: holder(cp) == "op-a", "op-a holds the Lease", logs=first.output)
    second = operators("op-b", args, kubeconfig=operator_account.kubeconfig)
    apply(cp, greet("before", namespace))
    until_ready(cp, namespace, "before", first, second)

    # The standby is healthy (its probe answers) but idle: no kopf, no watch, no writes.
    assert second.alive()
    assert holder(cp) == "op-a"
    assert not re.search(r'"logger": "kopf', second.output()), second.output()[-2000:]
    taken = lease(cp)
    assert taken is not None
    # The server accepted the operator's MicroTime fields and keeps them as it got them.
    for stamp in ("acquireTime", "renewTime"):
        assert datetime.strptime(taken["spec"][stamp], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert taken["spec"]["leaseDurationSeconds"] == 3

    first.kill()
    wait_until(
        lambda: holder(cp) == "op-b", "op-b takes the Lease over", timeout=30, logs=second.output
    )
    apply(cp, greet("after", namespace))
    until_ready(cp, namespace, "after", second)
    handed = lease(cp)
    assert handed is not None
    assert handed["spec"].get("leaseTransitions", 0) >= 1, handed["spec"]

    assert second.stop() == 0, second.output()[-3000:]
    assert not holder(cp), "a clean shutdown releases the Lease"


def test_without_the_lease_role_the_operator_cannot_lead_and_says_why(
    control_plane: ControlPlane,
    operators: Callable[..., Operator],
) -> None:
    # With mutex off, the chart grants leases only in the release namespace (mutex on adds
    # them in every watched namespace): elsewhere the server refuses. A release of its own,
    # so its ServiceAccount has exactly that RBAC.
    cp = control_plane
    objects = render_chart(
        cp, {**OPERATOR_VALUES, "mutex": {"enabled": False}}, release="kubesteps-nomutex"
    )
    assert not any(
        rule
        for role in of_kind(objects, "ClusterRole")
        for rule in role.get("rules", [])
        if "leases" in rule.get("resources", ())
    ), "with mutex off no ClusterRole grants leases"
    apply(cp, of_kind(objects, *IDENTITY_KINDS))
    (account,) = of_kind(objects, "ServiceAccount")
    kubeconfig = service_account_kubeconfig(cp, account["metadata"]["name"], RELEASE_NAMESPACE)
    args = [*container_args(objects), *QUICK]
    index = args.index("--leader-election-namespace")
    args[index + 1] = "default"

    candidate = operators("op-x", args, kubeconfig=kubeconfig)

    def refusal() -> str | None:
        for line in candidate.output().splitlines():
            record = json.loads(line) if line.startswith("{") else {}
            if record.get("logger") == "kubesteps.leader" and "403 Forbidden" in record["message"]:
                return str(record["message"])
        return None

    message = wait_until(
        refusal,
        "the operator logs that it may not use a Lease in default",
        timeout=30,
        logs=candidate.output,
    )
    assert (
        'cannot get resource "leases" in API group "coordination.k8s.io" in the namespace '
        '"default"' in message
    ), message
    assert candidate.alive(), "a standby that may not read the Lease keeps trying"
    with pytest.raises(ApiStatusError) as missing:
        cp.request("GET", LEASE.replace(RELEASE_NAMESPACE, "default"))
    assert missing.value.status == 404, "no Lease may be created in default"
