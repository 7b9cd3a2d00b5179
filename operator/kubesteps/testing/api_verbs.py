"""What each API verb does to stored objects: the semantics of a real kube-apiserver.

Every write goes through the same steps: check the identity and preconditions, build the
new object from the old one (status writes touch only ``.status``; main-resource writes keep
``.status`` when the resource has a status subresource), admit it (metadata checks, and the
CRD schema for custom resources), then store it under a new revision - unless nothing
changed, in which case, as on a real server, neither the revision moves nor an event fires.
"""

from __future__ import annotations

import copy
import json
import random
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from kubesteps.testing import crds
from kubesteps.testing.discovery import Discovery, ResourceInfo
from kubesteps.testing.patches import json_patch, merge_patch, strategic_merge_patch
from kubesteps.testing.schema import SchemaValidator, validate_metadata
from kubesteps.testing.status_errors import ApiError, Cause, conflict, invalid, not_found
from kubesteps.testing.storage import Obj, Predicate, Store

Clock = Callable[[], datetime]

PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
}
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Fields of metadata that only the server sets; a write cannot change them.
_SERVER_META = (
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
)
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_GENERATE_TRIES = 8

Written = tuple[Obj, list[str]]  # the stored object, and warnings for the client
_NO_GENERATION = (
    ("", "namespaces"),
    ("", "nodes"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
)
# Fields a built-in kind leaves out when empty (Go's omitempty), by (group, plural).
_OMITTED_WHEN_EMPTY = {
    ("", "configmaps"): ("data", "binaryData"),
    ("", "secrets"): ("data", "stringData"),
}
# Built-ins whose DELETE answers the object rather than a Status (as kube-apiserver's).
_DELETE_ANSWERS_THE_OBJECT = (("", "pods"), ("", "namespaces"))


def listing(info: ResourceInfo, items: list[Obj], revision: int) -> Obj:
    """A list as kube-apiserver serves it: a built-in list's items carry no apiVersion and
    kind (a typed list's items are not self-describing), a custom resource's do, and its
    metadata has an empty ``continue``."""
    meta: Obj = {"resourceVersion": str(revision)}
    if info.custom:
        meta["continue"] = ""
    else:
        items = [{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")} for obj in items]
    return {
        "apiVersion": info.api_version,
        "kind": f"{info.kind}List",
        "metadata": meta,
        "items": items,
    }


def deleted(info: ResourceInfo, obj: Obj, gone: bool) -> Obj:
    """What a DELETE answers: the object while finalizers hold it (and for pods and
    namespaces), else a ``Status`` of success naming it, as kube-apiserver does."""
    if not gone or info.storage_key in _DELETE_ANSWERS_THE_OBJECT:
        return obj
    meta = obj["metadata"]
    details: Obj = {"name": meta["name"]}
    if info.group:
        details["group"] = info.group
    details.update(kind=info.plural, uid=meta["uid"])
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    }


def as_version(obj: Obj, info: ResourceInfo) -> Obj:
    """Objects are stored once per resource; each served version shows its own apiVersion."""
    if obj.get("apiVersion") == info.api_version:
        return obj
    return {**obj, "apiVersion": info.api_version}


def _without_revision(obj: Obj) -> Obj:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def _content(obj: Obj, *, without_status: bool) -> Obj:
    """The part of an object whose changes bump ``metadata.generation``."""
    return {
        k: v for k, v in obj.items() if k != "metadata" and not (without_status and k == "status")
    }


class Api:
    def __init__(
        self,
        store: Store,
        discovery: Discovery,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.discovery = discovery
        self._clock = clock or (lambda: datetime.now(UTC))
        self._rng = rng or random.Random()
        self._validators: dict[tuple[str, str, str], SchemaValidator] = {}
        namespaces = discovery.lookup("", "v1", "namespaces")
        for name in INITIAL_NAMESPACES:
            self.create(namespaces, "", {"metadata": {"name": name}}, field_validation="Ignore")

    def _now(self) -> str:
        return self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")

    def _uid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def schema(self, info: ResourceInfo) -> Obj | None:
        """The ``openAPIV3Schema`` a custom resource is admitted with (None: a built-in)."""
        validator = self._validators.get((info.group, info.version, info.plural))
        return validator.schema if validator is not None else None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, info: ResourceInfo, namespace: str, name: str) -> Obj:
        obj = self.store.get(info.storage_key, namespace, name)
        if obj is None:
            raise not_found(info.plural, info.group, name)
        return obj

    def list_objects(
        self, info: ResourceInfo, namespace: str | None, predicates: Iterable[Predicate]
    ) -> Obj:
        checks = tuple(predicates)
        items = [
            obj
            for obj in self.store.items(info.storage_key, namespace)
            if all(check(obj) for check in checks)
        ]
        return listing(info, items, self.store.revision)

    # -- create --------------------------------------------------------------------------------

    def create(
        self, info: ResourceInfo, namespace: str, body: Any, *, field_validation: str
    ) -> Written:
        obj = self._check_body(info, body)
        meta = obj["metadata"] = dict(obj["metadata"])
        unnamed: list[Cause] = []
        if not meta.get("name"):
            if not meta.get("generateName"):
                unnamed.append(
                    Cause(
                        "metadata.name",
                        "metadata.name: Required value: name or generateName is required",
                        "FieldValueRequired",
                    )
                )
            else:
                meta["name"] = self._generate_name(info, namespace, meta["generateName"])
        name = meta.get("name") or ""
        if meta.get("resourceVersion"):
            # kube-apiserver answers this one as a bare internal error: 500, no reason.
            raise ApiError(
                "", "resourceVersion should not be set on objects to be created", code=500
            )
        if info.namespaced:
            self._check_namespace(meta, namespace)
            if self.store.get(("", "namespaces"), "", namespace) is None:
                raise not_found("namespaces", "", namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        for key in _SERVER_META:
            meta.pop(key, None)
        if info.has_status:
            obj.pop("status", None)  # a real server resets status on create
        obj, warnings = self._admit(info, obj, None, field_validation, unnamed)
        if self.store.get(info.storage_key, meta.get("namespace") or "", name) is not None:
            raise ApiError(
                "AlreadyExists",
                f'{info.qualified} "{name}" already exists',
                name=name,
                group=info.group,
                kind=info.plural,
            )
        meta = obj["metadata"]
        meta.update(uid=self._uid(), creationTimestamp=self._now())
        if self._tracks_generation(info):
            meta["generation"] = 1
        served = self._before_crd_write(info, obj)
        if (info.group, info.plural) == ("", "namespaces"):
            # What kube-apiserver's namespace strategy adds (the finalizer is the namespace
            # controller's; here a deleted namespace is emptied and removed at once).
            meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": name}
            obj["spec"] = {"finalizers": ["kubernetes"], **(obj.get("spec") or {})}
            obj["status"] = {"phase": "Active"}
        meta["resourceVersion"] = str(self.store.next_revision())
        self.store.write(info.storage_key, "ADDED", obj)
        self._after_crd_write(served)
        return obj, warnings

    def _generate_name(self, info: ResourceInfo, namespace: str, prefix: str) -> str:
        """``prefix`` and five random characters, drawn again when the name is taken, as
        kube-apiserver does since 1.32 (RetryGenerateName: up to 8 draws in all)."""
        scope = namespace if info.namespaced else ""
        for _ in range(_GENERATE_TRIES):
            name = prefix + "".join(self._rng.choice(_GENERATE_ALPHABET) for _ in range(5))
            if self.store.get(info.storage_key, scope, name) is None:
                return name
        return name  # taken too: the create answers AlreadyExists, as the real server does

    @staticmethod
    def _tracks_generation(info: ResourceInfo) -> bool:
        # Built-ins with a status subresource count generations, but for the ones without a
        # spec a controller reconciles (kube-apiserver gives these none).
        return info.custom or (info.has_status and info.storage_key not in _NO_GENERATION)

    @staticmethod
    def _check_body(info: ResourceInfo, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(
                "BadRequest", f"the request body must be a JSON object, got {body!r:.60}"
            )
        api_version = body.get("apiVersion", info.api_version)
        kind = body.get("kind", info.kind)
        if api_version != info.api_version:
            raise ApiError(
                "BadRequest",
                f"the API version in the data ({api_version}) does not"
                f" match the expected API version ({info.api_version})",
            )
        meta = body.get("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError("BadRequest", "metadata must be a JSON object")
        if kind != info.kind and info.custom:
            # What kube-apiserver answers for a custom resource (the kind it was given).
            raise invalid(
                kind,
                info.group,
                str(meta.get("name") or ""),
                [Cause("kind", f"kind: Invalid value: {json.dumps(kind)}: must be {info.kind}")],
            )
        if kind != info.kind:
            raise ApiError(
                "BadRequest",
                f'{kind} in version "{info.version}" cannot be'
                f' handled as a {info.kind}: no kind "{kind}" is registered for'
                f' version "{info.api_version}"',
            )
        return {**body, "apiVersion": api_version, "kind": kind, "metadata": meta}

    @staticmethod
    def _check_namespace(meta: Obj, namespace: str) -> None:
        if meta.get("namespace") and meta["namespace"] != namespace:
            raise ApiError(
                "BadRequest",
                "the namespace of the provided object does not match the"
                " namespace sent on the request",
            )

    def _admit(
        self,
        info: ResourceInfo,
        obj: Obj,
        old: Obj | None,
        field_validation: str,
        causes: Iterable[Cause] = (),
    ) -> Written:
        meta = obj["metadata"]
        for key in _OMITTED_WHEN_EMPTY.get(info.storage_key, ()):
            if obj.get(key) in ({}, None):
                obj.pop(key, None)
        found = [
            *causes,
            *validate_metadata(meta, dns_label=(info.group, info.plural) == ("", "namespaces")),
        ]
        validator = self._validators.get((info.group, info.version, info.plural))
        if validator is None:
            if found:
                raise invalid(info.kind, info.group, meta.get("name") or "", found)
            return obj, []
        # A custom resource's metadata and schema are judged together, as on a real server.
        return validator.admit(obj, old, field_validation=field_validation, causes=found)

    # -- update and patch ----------------------------------------------------------------------

    def replace(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        subresource: str | None,
        body: Any,
        *,
        field_validation: str,
    ) -> Written:
        old = self.get(info, namespace, name)
        candidate = self._check_body(info, body)
        return self._update(
            info,
            old,
            candidate,
            subresource=subresource,
            field_validation=field_validation,
            require_revision=info.custom,
        )

    def patch(
        self,
        info: ResourceInfo,
        namespace: str,
        name: str,
        subresource: str | None,
        patch_type: str,
        body: Any,
        *,
        field_validation: str,
    ) -> Written:
        old = self.get(info, namespace, name)
        if patch_type == "json":
            patched = json_patch(old, body)
        elif not isinstance(body, dict):
            raise ApiError("BadRequest", f"a {patch_type} patch must be a JSON object")
        elif patch_type == "strategic":
            if info.custom:
                raise ApiError(
                    "UnsupportedMediaType",
                    "the body of the request was in an unknown format - accepted media types"
                    " include: application/json-patch+json, application/merge-patch+json,"
                    " application/apply-patch+yaml (strategic merge patch is not supported for"
                    " custom resources)",
                )
            patched = strategic_merge_patch(old, body)
        else:
            patched = merge_patch(old, body)
        if isinstance(patched, dict) and patched.get("apiVersion") == old.get("apiVersion"):
            patched["apiVersion"] = info.api_version  # stored by another version of the CRD
        candidate = self._check_body(info, patched)
        return self._update(
            info,
            old,
            candidate,
            subresource=subresource,
            field_validation=field_validation,
            require_revision=False,
        )

    def _update(
        self,
        info: ResourceInfo,
        old: Obj,
        candidate: Obj,
        *,
        subresource: str | None,
        field_validation: str,
        require_revision: bool,
    ) -> Written:
        old_meta = old["metadata"]
        name = old_meta["name"]
        revision = candidate["metadata"].get("resourceVersion")
        if revision in (None, ""):
            if require_revision:
                # kube-apiserver names the resource here (plural), not the kind.
                raise invalid(
                    info.plural,
                    info.group,
                    name,
                    [
                        Cause(
                            "metadata.resourceVersion",
                            "metadata.resourceVersion: Invalid value: 0:"
                            " must be specified for an update",
                        )
                    ],
                )
        elif str(revision) != old_meta["resourceVersion"]:
            raise conflict(info.plural, info.group, name)

        if subresource == "status":
            new = {**old, "metadata": dict(old_meta)}
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        else:
            new = self._merge_identity(info, old, candidate)
        new, warnings = self._admit(info, new, old, field_validation)
        if subresource != "status" and self._tracks_generation(info):
            without = info.has_status
            if _content(new, without_status=without) != _content(old, without_status=without):
                new["metadata"]["generation"] = old_meta.get("generation", 1) + 1
        served = self._before_crd_write(info, new)
        return self._commit(info, old, new, served), warnings

    def _merge_identity(self, info: ResourceInfo, old: Obj, candidate: Obj) -> Obj:
        old_meta, meta = old["metadata"], dict(candidate["metadata"])
        if meta.get("name", old_meta["name"]) != old_meta["name"]:
            raise ApiError(
                "BadRequest",
                f"the name of the object ({meta['name']}) does not match"
                f" the name on the URL ({old_meta['name']})",
            )
        if info.namespaced:
            self._check_namespace(meta, old_meta["namespace"])
        for key in ("name", "namespace", *_SERVER_META):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if old_meta.get("deletionTimestamp"):
            before = old_meta.get("finalizers", [])
            added = [f for f in meta.get("finalizers") or [] if f not in before]
            if added:
                raise invalid(
                    info.kind,
                    info.group,
                    old_meta["name"],
                    [
                        Cause(
                            "metadata.finalizers",
                            "metadata.finalizers: Forbidden: no new finalizers can be added"
                            f" if the object is being deleted, found new finalizers {added}",
                            "FieldValueForbidden",
                        )
                    ],
                )
        new = {**candidate, "metadata": meta}
        if info.has_status:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        return new

    def _commit(
        self, info: ResourceInfo, old: Obj, new: Obj, served: list[crds.ServedVersion]
    ) -> Obj:
        if _without_revision(new) == _without_revision(old):
            return old
        revision = str(self.store.next_revision())
        meta = new["metadata"] = {**new["metadata"], "resourceVersion": revision}
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self.store.write(info.storage_key, "DELETED", new)
            self._after_removal(info, new)
            # kube-apiserver answers the write that removed it with the last stored revision
            # (its watchers see the DELETED event at the new one).
            return {
                **new,
                "metadata": {**meta, "resourceVersion": old["metadata"]["resourceVersion"]},
            }
        else:
            self.store.write(info.storage_key, "MODIFIED", new)
            self._after_crd_write(served)
        return new

    # -- delete --------------------------------------------------------------------------------

    def delete(self, info: ResourceInfo, namespace: str, name: str, options: Obj) -> Obj:
        old = self.get(info, namespace, name)
        meta = old["metadata"]
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") not in (None, meta["uid"]):
            raise ApiError(
                "Conflict",
                f"Precondition failed: UID in precondition:"
                f" {preconditions['uid']}, UID in object meta: {meta['uid']}",
                name=name,
                group=info.group,
                kind=info.plural,
            )
        if preconditions.get("resourceVersion") not in (None, meta["resourceVersion"]):
            raise ApiError(
                "Conflict",
                "Precondition failed: ResourceVersion in precondition:"
                f" {preconditions['resourceVersion']}, ResourceVersion in object meta:"
                f" {meta['resourceVersion']}",
                name=name,
                group=info.group,
                kind=info.plural,
            )
        if meta.get("deletionTimestamp"):
            return old  # deletion is already in progress; finalizers decide when it ends
        new_meta = {**meta, "resourceVersion": str(self.store.next_revision())}
        if meta.get("finalizers"):
            new_meta.update(deletionTimestamp=self._now(), deletionGracePeriodSeconds=0)
            if "generation" in meta:
                new_meta["generation"] = meta["generation"] + 1
            new = {**old, "metadata": new_meta}
            self.store.write(info.storage_key, "MODIFIED", new)
            return new
        new = {**old, "metadata": new_meta}
        self.store.write(info.storage_key, "DELETED", new)
        self._after_removal(info, new)
        return new

    def delete_collection(
        self,
        info: ResourceInfo,
        namespace: str | None,
        predicates: Iterable[Predicate],
        options: Obj,
    ) -> Obj:
        # As kube-apiserver answers: the list it deleted, as it was listed (revisions too).
        checks = tuple(predicates)
        items = [
            obj
            for obj in self.store.items(info.storage_key, namespace)
            if all(check(obj) for check in checks)
        ]
        revision = self.store.revision
        for obj in items:
            self.delete(
                info, obj["metadata"].get("namespace") or "", obj["metadata"]["name"], options
            )
        return listing(info, items, revision)

    def _after_removal(self, info: ResourceInfo, obj: Obj) -> None:
        if (info.group, info.plural) == ("", "namespaces"):
            self._empty_namespace(obj["metadata"]["name"])
        elif (info.group, info.plural) == (crds.CRD_GROUP, crds.CRD_PLURAL):
            self._unserve(obj)

    def _empty_namespace(self, namespace: str) -> None:
        """What the namespace controller does: delete everything the namespace held."""
        seen: set[tuple[str, str]] = set()
        for info in self.discovery:
            if not info.namespaced or info.storage_key in seen:
                continue
            seen.add(info.storage_key)
            for obj in self.store.items(info.storage_key, namespace):
                self.delete(info, namespace, obj["metadata"]["name"], {})

    # -- custom resource definitions -----------------------------------------------------------

    def _before_crd_write(self, info: ResourceInfo, obj: Obj) -> list[crds.ServedVersion]:
        if (info.group, info.plural) != (crds.CRD_GROUP, crds.CRD_PLURAL):
            return []
        served = crds.parse_crd(obj)
        if "status" not in obj:
            obj["status"] = crds.established_status(obj, self._now())
        return served

    def _after_crd_write(self, served: list[crds.ServedVersion]) -> None:
        if not served:
            return
        first = served[0].info
        self.discovery.remove(first.group, first.plural)
        for key in [k for k in self._validators if (k[0], k[2]) == (first.group, first.plural)]:
            del self._validators[key]
        self.store.serve(first.storage_key)
        for version in served:
            self.discovery.add(version.info)
            info = version.info
            self._validators[(info.group, info.version, info.plural)] = version.validator

    def _unserve(self, crd: Obj) -> None:
        spec = crd.get("spec") or {}
        group, plural = spec.get("group", ""), (spec.get("names") or {}).get("plural", "")
        served = self.discovery.versions_of(group, plural)
        if served:
            info = served[0]
            for obj in self.store.items(info.storage_key, None):
                meta = {**obj["metadata"], "resourceVersion": str(self.store.next_revision())}
                self.store.write(info.storage_key, "DELETED", {**obj, "metadata": meta})
            self.store.drop(info.storage_key)
        self.discovery.remove(group, plural)
        for key in [k for k in self._validators if (k[0], k[2]) == (group, plural)]:
            del self._validators[key]

    def register_crd(self, crd: Obj) -> Obj:
        """Create a CRD as ``kubectl apply`` would; its kind is served as soon as this returns."""
        info = self.discovery.lookup(crds.CRD_GROUP, "v1", crds.CRD_PLURAL)
        body = copy.deepcopy(crd)
        body.setdefault("apiVersion", info.api_version)
        body.setdefault("kind", info.kind)
        return self.create(info, "", body, field_validation="Ignore")[0]
