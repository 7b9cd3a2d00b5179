"""CustomResourceDefinitions: checking them, and turning them into served resources."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubesteps.testing.discovery import ResourceInfo
from kubesteps.testing.schema import SchemaValidator
from kubesteps.testing.status_errors import ApiError, Cause, invalid
from kubesteps.testing.tables import PrinterColumn

CRD_GROUP = "apiextensions.k8s.io"
CRD_PLURAL = "customresourcedefinitions"


@dataclass(frozen=True)
class ServedVersion:
    info: ResourceInfo
    validator: SchemaValidator


def _require(value: Any, field: str, causes: list[Cause]) -> Any:
    if not value:
        causes.append(Cause(field, f"{field}: Required value", "FieldValueRequired"))
    return value


def parse_crd(crd: dict[str, Any]) -> list[ServedVersion]:
    """Check a CRD the way the apiextensions server does, and compile its served versions."""
    name = (crd.get("metadata") or {}).get("name") or ""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise invalid(
            "CustomResourceDefinition",
            CRD_GROUP,
            name,
            [Cause("spec", "spec: Required value", "FieldValueRequired")],
        )
    causes: list[Cause] = []
    names = spec.get("names") or {}
    group = _require(spec.get("group"), "spec.group", causes)
    plural = _require(names.get("plural"), "spec.names.plural", causes)
    kind = _require(names.get("kind"), "spec.names.kind", causes)
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        causes.append(
            Cause(
                "spec.scope",
                f'spec.scope: Unsupported value: "{scope}": supported'
                ' values: "Cluster", "Namespaced"',
                "FieldValueNotSupported",
            )
        )
    if group and plural and name != f"{plural}.{group}":
        causes.append(
            Cause(
                "metadata.name",
                f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
            )
        )
    versions = spec.get("versions") or []
    _require(versions, "spec.versions", causes)
    if versions and sum(1 for v in versions if v.get("storage")) != 1:
        causes.append(
            Cause(
                "spec.versions",
                "spec.versions: Invalid value: must have exactly one"
                " version marked as storage version",
            )
        )
    for index, version in enumerate(versions):
        _require(version.get("name"), f"spec.versions[{index}].name", causes)
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        _require(schema, f"spec.versions[{index}].schema.openAPIV3Schema", causes)
    if causes:
        raise invalid("CustomResourceDefinition", CRD_GROUP, name, causes)

    served: list[ServedVersion] = []
    for index, version in enumerate(versions):
        if not version.get("served", True):
            continue
        info = ResourceInfo(
            group=group,
            version=version["name"],
            plural=plural,
            kind=kind,
            singular=names.get("singular") or kind.lower(),
            namespaced=scope == "Namespaced",
            short_names=tuple(names.get("shortNames") or ()),
            subresources=frozenset(version.get("subresources") or {}),
            categories=tuple(names.get("categories") or ()),
            custom=True,
            printer_columns=tuple(
                PrinterColumn.parse(c) for c in version.get("additionalPrinterColumns") or ()
            ),
        )
        try:
            validator = SchemaValidator(
                version["schema"]["openAPIV3Schema"], kind=kind, group=group
            )
        except ApiError as exc:
            field = f"spec.versions[{index}].schema.openAPIV3Schema"
            raise invalid(
                "CustomResourceDefinition",
                CRD_GROUP,
                name,
                [Cause(field, f"{field}: {exc.message}")],
            ) from exc
        served.append(ServedVersion(info, validator))
    return served


def established_status(crd: dict[str, Any], timestamp: str) -> dict[str, Any]:
    """The status the apiextensions controller would write once the names are accepted."""
    spec = crd["spec"]
    storage = next(v["name"] for v in spec["versions"] if v.get("storage"))
    conditions = [
        {
            "type": kind,
            "status": "True",
            "reason": reason,
            "message": message,
            "lastTransitionTime": timestamp,
        }
        for kind, reason, message in (
            ("NamesAccepted", "NoConflicts", "no conflicts found"),
            ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
        )
    ]
    return {"conditions": conditions, "acceptedNames": spec["names"], "storedVersions": [storage]}
