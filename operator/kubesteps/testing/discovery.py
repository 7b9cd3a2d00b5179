"""The resources the emulator serves, and the discovery documents that describe them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kubesteps.testing.status_errors import ApiError
from kubesteps.testing.tables import PrinterColumn, built_in_columns

VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
SUBRESOURCE_VERBS = ("get", "patch", "update")


@dataclass(frozen=True)
class ResourceInfo:
    """One served resource (a group, version and plural) and what the server knows about it."""

    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    categories: tuple[str, ...] = ()
    # Served from a CustomResourceDefinition: schema-validated, and updates need a resourceVersion.
    custom: bool = False
    # A CRD's additionalPrinterColumns, for the Table `kubectl get` asks for.
    printer_columns: tuple[PrinterColumn, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per group and plural, whichever version wrote them."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """``plural.group`` as kubectl and error messages spell it (``plural`` for the core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


def _builtin(
    api_version: str,
    plural: str,
    kind: str,
    *,
    namespaced: bool = True,
    short: tuple[str, ...] = (),
    status: bool = False,
    more: frozenset[str] = frozenset(),
) -> ResourceInfo:
    group, _, version = api_version.rpartition("/")
    return ResourceInfo(
        group=group,
        version=version,
        plural=plural,
        kind=kind,
        singular=kind.lower(),
        namespaced=namespaced,
        short_names=short,
        subresources=(frozenset({"status"}) if status else frozenset()) | more,
        printer_columns=built_in_columns(group, plural),
    )


# Enough of a cluster for kopf (namespaces, events, CRDs, leases) and for the objects an
# operator typically creates. Controllers never run: a Job stays as it was written.
BUILTINS: tuple[ResourceInfo, ...] = (
    _builtin("v1", "namespaces", "Namespace", namespaced=False, short=("ns",), status=True),
    _builtin("v1", "events", "Event", short=("ev",)),
    _builtin("v1", "configmaps", "ConfigMap", short=("cm",)),
    _builtin("v1", "secrets", "Secret"),
    # pods/log: the text a test gave with Emulator.write_pod_log (no kubelet runs here).
    _builtin("v1", "pods", "Pod", short=("po",), status=True, more=frozenset({"log"})),
    _builtin("v1", "services", "Service", short=("svc",), status=True),
    _builtin("v1", "serviceaccounts", "ServiceAccount", short=("sa",)),
    _builtin("v1", "persistentvolumeclaims", "PersistentVolumeClaim", short=("pvc",), status=True),
    _builtin("v1", "nodes", "Node", namespaced=False, short=("no",), status=True),
    _builtin("apps/v1", "deployments", "Deployment", short=("deploy",), status=True),
    _builtin("apps/v1", "statefulsets", "StatefulSet", short=("sts",), status=True),
    _builtin("apps/v1", "daemonsets", "DaemonSet", short=("ds",), status=True),
    _builtin("apps/v1", "replicasets", "ReplicaSet", short=("rs",), status=True),
    _builtin("batch/v1", "jobs", "Job", status=True),
    _builtin("batch/v1", "cronjobs", "CronJob", short=("cj",), status=True),
    _builtin("coordination.k8s.io/v1", "leases", "Lease"),
    _builtin("events.k8s.io/v1", "events", "Event", short=("ev",)),
    _builtin("rbac.authorization.k8s.io/v1", "roles", "Role"),
    _builtin("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding"),
    _builtin("rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", namespaced=False),
    _builtin(
        "rbac.authorization.k8s.io/v1",
        "clusterrolebindings",
        "ClusterRoleBinding",
        namespaced=False,
    ),
    _builtin(
        "apiextensions.k8s.io/v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        short=("crd", "crds"),
        status=True,
    ),
)

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int]:
    """Kubernetes' version order: GA before beta before alpha, higher numbers first."""
    match = _VERSION_RE.match(version)
    if match is None:
        return (0, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 3, "beta": 2, "alpha": 1}[stage]
    return (rank, int(major), int(minor or 0))


class Discovery:
    """The served resources, looked up by path and rendered as discovery documents."""

    def __init__(self, resources: Iterable[ResourceInfo] = BUILTINS) -> None:
        self._resources: dict[tuple[str, str, str], ResourceInfo] = {}
        for info in resources:
            self.add(info)

    def __iter__(self) -> Iterator[ResourceInfo]:
        return iter(list(self._resources.values()))

    def add(self, info: ResourceInfo) -> None:
        self._resources[(info.group, info.version, info.plural)] = info

    def remove(self, group: str, plural: str) -> None:
        for key in [k for k in self._resources if (k[0], k[2]) == (group, plural)]:
            del self._resources[key]

    def lookup(self, group: str, version: str, plural: str) -> ResourceInfo:
        info = self._resources.get((group, version, plural))
        if info is None:
            raise ApiError("NotFound", "the server could not find the requested resource")
        return info

    def versions_of(self, group: str, plural: str) -> list[ResourceInfo]:
        return [i for i in self._resources.values() if (i.group, i.plural) == (group, plural)]

    def matches(self, info: ResourceInfo, name: str) -> bool:
        """Whether ``name`` designates ``info``, as kubectl would: plural, kind, short name,
        optionally qualified by group (``pipelines.kubesteps.dev``) or group/version."""
        base, _, group = name.partition(".")
        if "/" in name:
            group_version, _, base = name.rpartition("/")
            if group_version not in (info.api_version, info.group):
                return False
            group = info.group
        if group and group != info.group:
            return False
        return base.lower() in (info.plural, info.singular, info.kind.lower(), *info.short_names)

    def _group_versions(self) -> dict[str, list[str]]:
        groups: dict[str, list[str]] = {}
        for group, version, _ in self._resources:
            versions = groups.setdefault(group, [])
            if version not in versions:
                versions.append(version)
        for versions in groups.values():
            versions.sort(key=version_priority, reverse=True)
        return groups

    def api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": self._group_versions().get("", ["v1"]),
            "serverAddressByClientCIDRs": [],
        }

    def group_list(self) -> dict[str, Any]:
        groups = [
            self._group_document(name, versions)
            for name, versions in sorted(self._group_versions().items())
            if name
        ]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def group(self, name: str) -> dict[str, Any]:
        versions = self._group_versions().get(name)
        if not name or versions is None:
            raise ApiError("NotFound", "the server could not find the requested resource")
        return {"kind": "APIGroup", "apiVersion": "v1", **self._group_document(name, versions)}

    @staticmethod
    def _group_document(name: str, versions: list[str]) -> dict[str, Any]:
        entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": entries, "preferredVersion": entries[0]}

    def resource_list(self, group: str, version: str) -> dict[str, Any]:
        infos = [i for i in self._resources.values() if (i.group, i.version) == (group, version)]
        if not infos:
            raise ApiError("NotFound", "the server could not find the requested resource")
        entries: list[dict[str, Any]] = []
        for info in sorted(infos, key=lambda i: i.plural):
            entry: dict[str, Any] = {
                "name": info.plural,
                "singularName": info.singular,
                "namespaced": info.namespaced,
                "kind": info.kind,
                "verbs": list(VERBS),
            }
            if info.short_names:
                entry["shortNames"] = list(info.short_names)
            if info.categories:
                entry["categories"] = list(info.categories)
            entries.append(entry)
            # Subresources carry no short names: kubectl would report them as ambiguous.
            entries.extend(
                {
                    "name": f"{info.plural}/{sub}",
                    "singularName": "",
                    "namespaced": info.namespaced,
                    "kind": info.kind,
                    "verbs": list(SUBRESOURCE_VERBS),
                }
                for sub in sorted(info.subresources)
            )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": entries,
        }
