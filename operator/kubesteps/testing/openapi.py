"""OpenAPI v3 documents, as kube-apiserver serves them at ``/openapi/v3``.

kubectl reads them before it sends a write: when the PATCH operation of a kind takes the
``fieldValidation`` query parameter, kubectl leaves validation to the server (``--validate``
then chooses Strict, Warn or Ignore), so ``kubectl apply``, ``create`` and ``edit`` work
without ``--validate=false``. ``kubectl explain`` reads the schemas. A custom resource's
schema is its CRD's ``openAPIV3Schema``; built-in kinds get an open object, as the emulator
does not validate them either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from kubesteps.testing.discovery import ResourceInfo

Obj = dict[str, Any]
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_QUERY = {
    "fieldValidation": "Strict, Warn or Ignore: what to do with unknown fields",
    "fieldManager": "the name of the writer",
    "dryRun": "not supported here",
}


def group_version_path(group: str, version: str) -> str:
    """The key of a group version in the index: ``api/v1``, ``apis/apps/v1``."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


def index(documents: dict[str, Obj]) -> Obj:
    """``/openapi/v3``: where each group version's document is, with a hash of its content
    (kubectl caches documents by it, so a changed CRD is read again)."""
    return {
        "paths": {
            path: {"serverRelativeURL": f"/openapi/v3/{path}?hash={_hash(document)}"}
            for path, document in sorted(documents.items())
        }
    }


def documents(
    resources: Iterable[ResourceInfo], schema_of: Callable[[ResourceInfo], Obj | None]
) -> dict[str, Obj]:
    """One OpenAPI document per served group version."""
    grouped: dict[str, list[ResourceInfo]] = {}
    for info in resources:
        grouped.setdefault(group_version_path(info.group, info.version), []).append(info)
    return {path: _document(infos, schema_of) for path, infos in grouped.items()}


def _document(infos: list[ResourceInfo], schema_of: Callable[[ResourceInfo], Obj | None]) -> Obj:
    paths: Obj = {}
    schemas: Obj = {
        OBJECT_META: {
            "type": "object",
            "description": "Standard object metadata.",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    }
    for info in sorted(infos, key=lambda i: i.plural):
        name = _schema_name(info)
        schemas[name] = _schema(info, schema_of(info))
        paths.update(_paths(info, name))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes (kubesteps emulator)", "version": "unversioned"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _schema_name(info: ResourceInfo) -> str:
    reversed_group = ".".join(reversed(info.group.split("."))) if info.group else "io.k8s.api.core"
    return f"{reversed_group}.{info.version}.{info.kind}"


def _gvk(info: ResourceInfo) -> Obj:
    return {"group": info.group, "version": info.version, "kind": info.kind}


def _schema(info: ResourceInfo, schema: Obj | None) -> Obj:
    if schema is None:
        schema = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    properties = dict(schema.get("properties") or {})
    properties["apiVersion"] = {
        "type": "string",
        "description": "The versioned schema of this representation of an object.",
    }
    properties["kind"] = {
        "type": "string",
        "description": "The REST resource this object represents.",
    }
    properties["metadata"] = {
        "allOf": [{"$ref": f"#/components/schemas/{OBJECT_META}"}],
        "description": "Standard object's metadata.",
    }
    return {**schema, "properties": properties, "x-kubernetes-group-version-kind": [_gvk(info)]}


def _paths(info: ResourceInfo, schema: str) -> Obj:
    base = "/" + group_version_path(info.group, info.version)
    if info.namespaced:
        collection = f"{base}/namespaces/{{namespace}}/{info.plural}"
    else:
        collection = f"{base}/{info.plural}"
    reference = {"$ref": f"#/components/schemas/{schema}"}
    content = {"application/json": {"schema": reference}}

    def operation(action: str, *, body: bool = False, query: Iterable[str] = ()) -> Obj:
        op: Obj = {
            "operationId": f"{action}{info.kind}",
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": _gvk(info),
            "parameters": [
                {
                    "name": name,
                    "in": "query",
                    "description": _QUERY[name],
                    "schema": {"type": "string", "uniqueItems": True},
                }
                for name in query
            ],
            "responses": {"200": {"description": "OK", "content": content}},
        }
        if body:
            op["requestBody"] = {"content": content, "required": True}
        return op

    writes = ("dryRun", "fieldManager", "fieldValidation")
    item = {
        "get": operation("get"),
        "put": operation("put", body=True, query=writes),
        "patch": operation("patch", body=True, query=writes),
        "delete": operation("delete"),
    }
    paths: Obj = {
        collection: {"get": operation("list"), "post": operation("post", body=True, query=writes)},
        f"{collection}/{{name}}": item,
    }
    for sub in sorted(info.subresources):
        paths[f"{collection}/{{name}}/{sub}"] = {
            "get": operation("get"),
            "put": operation("put", body=True, query=writes),
            "patch": operation("patch", body=True, query=writes),
        }
    return paths


def _hash(document: Obj) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"))
    return hashlib.sha512(text.encode()).hexdigest()[:128].upper()
