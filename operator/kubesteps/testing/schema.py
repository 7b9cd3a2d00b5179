"""Admission of custom resources: what a real API server does with a CRD's ``openAPIV3Schema``.

In the server's order: prune unknown fields (or reject them, per ``fieldValidation``), drop
nulls from non-nullable fields, apply defaults, then validate the schema keywords
(jsonschema, Draft 4 - the dialect OpenAPI v3.0 is built on) and the CEL rules of
``x-kubernetes-validations`` (cel-python). Failures become the 422 ``Invalid`` causes a real
server would list, with the same field paths (``spec.steps[0].name``).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import celpy
import jsonschema
from celpy.adapter import json_to_cel
from celpy.celtypes import BoolType

from kubesteps.testing.status_errors import ApiError, Cause, invalid

JSON = Any
_ROOT_FIELDS = ("apiVersion", "kind", "metadata")
# Errors after which kube-apiserver evaluates no CEL rule (its hasBlockingErr): the rules
# would meet missing values, values of the wrong type, or values too large to cost.
_BLOCKING = frozenset(
    {
        "FieldValueTypeInvalid",
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
    }
)
NOT_CHECKED = Cause(
    "<nil>",
    "<nil>: Invalid value: null: some validation rules were not checked"
    " because the object was invalid; correct the existing errors to"
    " complete validation",
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def _render(value: JSON) -> str:
    if isinstance(value, dict):
        return '"object"'
    if isinstance(value, list):
        return '"array"'
    return json.dumps(value)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def validate_metadata(meta: JSON, *, dns_label: bool = False) -> list[Cause]:
    """The generic ObjectMeta checks every resource gets: name, labels, annotations."""
    causes: list[Cause] = []
    if not isinstance(meta, dict):
        return [Cause("metadata", "metadata: Invalid value: must be an object")]
    name = meta.get("name")
    if isinstance(name, str) and name:
        pattern, what = (_DNS_LABEL, "label") if dns_label else (_DNS_SUBDOMAIN, "subdomain")
        if not pattern.match(name) or len(name) > (63 if dns_label else 253):
            causes.append(
                Cause(
                    "metadata.name",
                    f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 {what} must'
                    " consist of lower case alphanumeric characters, '-' or '.', and must start"
                    " and end with"
                    " an alphanumeric character",
                )
            )
    labels = meta.get("labels") or {}
    if not isinstance(labels, dict):
        causes.append(Cause("metadata.labels", "metadata.labels: Invalid value: must be a map"))
        labels = {}
    for key, value in labels.items():
        causes.extend(_qualified_key("metadata.labels", key))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            causes.append(
                Cause(
                    "metadata.labels",
                    f"metadata.labels: Invalid value: {json.dumps(value)}: a valid label must be an"
                    " empty string or consist of alphanumeric characters, '-', '_' or '.', and must"
                    " start and end with an alphanumeric character (at most 63 characters)",
                )
            )
    annotations = meta.get("annotations") or {}
    if not isinstance(annotations, dict):
        causes.append(Cause("metadata.annotations", "metadata.annotations: must be a map"))
        annotations = {}
    for key, value in annotations.items():
        causes.extend(_qualified_key("metadata.annotations", key))
        if not isinstance(value, str):
            causes.append(
                Cause(
                    "metadata.annotations",
                    f"metadata.annotations: Invalid value: {json.dumps(value)}: must be a string",
                )
            )
    return causes


def _qualified_key(field_path: str, key: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    if (
        (prefix and not _DNS_SUBDOMAIN.match(prefix))
        or len(name) > 63
        or not (_QUALIFIED_NAME.match(name))
    ):
        return [
            Cause(
                field_path,
                f'{field_path}: Invalid value: "{key}": name part must consist of alphanumeric'
                " characters, '-', '_' or '.', and must start and end with an alphanumeric"
                " character,"
                " with an optional DNS subdomain prefix and '/'",
            )
        ]
    return []


def to_json_schema(node: JSON) -> JSON:
    """Rewrite the OpenAPI-only keywords into their JSON Schema equivalents."""
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: to_json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not"):
            out[key] = to_json_schema(value)
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub) for sub in value]
        elif not key.startswith("x-kubernetes-") and key not in ("nullable", "default"):
            out[key] = value
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [*out.get("anyOf", []), {"type": "integer"}, {"type": "string"}]
        if node.get("nullable"):
            out["anyOf"].append({"type": "null"})
    elif node.get("nullable"):
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if isinstance(out.get("enum"), list):
            out["enum"] = [*out["enum"], None]
    return out


_UNDECLARED = re.compile(r"undeclared reference to '([^']+)'")


class _Unsupported(Exception):
    """A CEL rule calls a function cel-python lacks: skipped with a warning, not failed."""


@dataclass
class _Rule:
    rule: str
    program: Any
    message: str | None
    message_program: Any
    reason: str
    field_path: str
    transition: bool


# A test suite registers the same CRD in hundreds of fresh emulators: checking a schema and
# parsing its CEL rules (most of the cost) are done once per process for each distinct one.
_META_VALIDATOR = jsonschema.Draft4Validator(jsonschema.Draft4Validator.META_SCHEMA)
_CEL = celpy.Environment()


@functools.lru_cache(maxsize=64)
def _schema_problem(schema_json: str) -> str | None:
    """The first reason a (JSON-encoded) schema is not a valid one, or None."""
    error = next(iter(_META_VALIDATOR.iter_errors(json.loads(schema_json))), None)
    return None if error is None else error.message


@functools.lru_cache(maxsize=4096)
def _parsed(source: str) -> Any:
    """A CEL expression's syntax tree (the interpreter only reads it, so it can be shared)."""
    return _CEL.compile(source)


@dataclass
class _Context:
    unknown: list[str] = field(default_factory=list)


class SchemaValidator:
    """Admits objects of one version of one CRD; built (and CEL-compiled) once per CRD."""

    def __init__(self, schema: JSON, *, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self.schema = schema
        json_schema = to_json_schema(schema)
        self._json_validator = jsonschema.Draft4Validator(json_schema)
        self._rules: dict[int, list[_Rule]] = {}
        problem = _schema_problem(json.dumps(json_schema, sort_keys=True))
        if problem is not None:
            raise ApiError("Invalid", f"openAPIV3Schema is not a valid schema: {problem}")
        self._compile(schema, "openAPIV3Schema")

    def _compile(self, node: JSON, path: str) -> None:
        if not isinstance(node, dict):
            return
        rules = []
        for index, spec in enumerate(node.get("x-kubernetes-validations") or []):
            where = f"{path}.x-kubernetes-validations[{index}]"
            rule = spec.get("rule") if isinstance(spec, dict) else None
            if not isinstance(rule, str) or not rule:
                raise ApiError("Invalid", f"{where}.rule: Required value")
            message_expression = spec.get("messageExpression")
            rules.append(
                _Rule(
                    rule=rule,
                    program=self._program(rule, f"{where}.rule"),
                    message=spec.get("message"),
                    message_program=(
                        self._program(message_expression, f"{where}.messageExpression")
                        if message_expression
                        else None
                    ),
                    reason=spec.get("reason") or "FieldValueInvalid",
                    field_path=(spec.get("fieldPath") or "").lstrip("."),
                    transition="oldSelf" in rule,
                )
            )
        if rules:
            self._rules[id(node)] = rules
        for name, sub in (node.get("properties") or {}).items():
            self._compile(sub, f"{path}.properties[{name}]")
        for key in ("items", "additionalProperties"):
            self._compile(node.get(key), f"{path}.{key}")

    def _program(self, source: str, where: str) -> Any:
        try:
            return _CEL.program(_parsed(source))
        except Exception as exc:  # celpy raises parser-specific exception types
            raise ApiError(
                "Invalid", f"{where}: Invalid value: {source!r}: compilation failed: {exc}"
            ) from exc

    def admit(
        self,
        obj: JSON,
        old: JSON | None,
        *,
        field_validation: str,
        causes: list[Cause] | None = None,
    ) -> tuple[JSON, list[str]]:
        """Return the pruned and defaulted object, and warnings; raise 400/422 when rejected.

        ``causes`` are the metadata's own refusals, listed first, as a real server does."""
        context = _Context()
        result = self._normalize(copy.deepcopy(obj), self.schema, "", context, root=True)
        warnings: list[str] = []
        if context.unknown:
            fields = ", ".join(f'unknown field "{path}"' for path in context.unknown)
            if field_validation == "Strict":
                raise ApiError(
                    "BadRequest",
                    f'{self.kind} in version "{obj.get("apiVersion", "")}" cannot be handled as a'
                    f" {self.kind}: strict decoding error: {fields}",
                )
            if field_validation != "Ignore":
                warnings = [f'unknown field "{path}"' for path in context.unknown]

        skipped: list[str] = []
        causes = [
            *(causes or ()),
            *self._schema_causes(result),
            *_duplicates(result, self.schema, ""),
        ]
        if any(cause.reason in _BLOCKING for cause in causes):
            causes.append(NOT_CHECKED)  # as on a real server: then no rule runs
        else:
            causes.extend(self._cel_causes(result, old, self.schema, "", skipped))
        warnings.extend(skipped)
        if causes:
            name = (result.get("metadata") or {}).get("name") or ""
            raise invalid(self.kind, self.group, name, causes)
        return result, warnings

    def _normalize(
        self, value: JSON, schema: JSON, path: str, context: _Context, *, root: bool = False
    ) -> JSON:
        if not isinstance(schema, dict):
            return value
        if isinstance(value, dict):
            preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
            properties = schema.get("properties") or {}
            additional = schema.get("additionalProperties")
            embedded = bool(schema.get("x-kubernetes-embedded-resource"))
            for key in list(value):
                child_path = _join(path, key)
                if root and key in _ROOT_FIELDS:
                    continue  # ObjectMeta has its own checks; apiVersion and kind always stay
                if key in properties:
                    sub = properties[key]
                elif isinstance(additional, dict):
                    sub = additional
                elif preserve or additional is True or (embedded and key in _ROOT_FIELDS):
                    continue
                else:
                    context.unknown.append(child_path)
                    del value[key]
                    continue
                if value[key] is None and not sub.get("nullable"):
                    del value[key]  # a null in a non-nullable field is pruned, then defaulted
                    continue
                value[key] = self._normalize(value[key], sub, child_path, context)
            for key, sub in properties.items():
                if key in value or (root and key in _ROOT_FIELDS):
                    continue
                if isinstance(sub, dict) and "default" in sub:
                    value[key] = self._normalize(
                        copy.deepcopy(sub["default"]), sub, _join(path, key), context
                    )
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            return [
                self._normalize(item, schema["items"], _join(path, index), context)
                for index, item in enumerate(value)
            ]
        return value

    def _schema_causes(self, obj: JSON) -> list[Cause]:
        causes: list[Cause] = []
        for error in sorted(self._json_validator.iter_errors(obj), key=lambda e: list(e.path)):
            path = ""
            for part in error.absolute_path:
                path = _join(path, part)
            causes.extend(_describe(error, path))
        return causes

    def _cel_causes(
        self, value: JSON, old: JSON, schema: JSON, path: str, skipped: list[str]
    ) -> Iterator[Cause]:
        if not isinstance(schema, dict):
            return
        for rule in self._rules.get(id(schema), ()):
            if rule.transition and old is None:
                continue  # transition rules only run on updates that have an old value
            try:
                failure = self._evaluate(rule, value, old)
            except _Unsupported as unsupported:
                skipped.append(
                    f"x-kubernetes-validations rule {rule.rule!r} at"
                    f" {path or '<root>'} was not evaluated: {unsupported}"
                )
                continue
            if failure is not None:
                where = _join(path, rule.field_path) if rule.field_path else path
                shown = _render(value)
                yield Cause(
                    where, f"{where or '<root>'}: Invalid value: {shown}: {failure}", rule.reason
                )
        if isinstance(value, dict):
            properties = schema.get("properties") or {}
            additional = schema.get("additionalProperties")
            for key, item in value.items():
                sub = properties.get(key, additional if isinstance(additional, dict) else None)
                if sub is None or (not path and key in _ROOT_FIELDS):
                    continue
                old_item = old.get(key) if isinstance(old, dict) else None
                yield from self._cel_causes(item, old_item, sub, _join(path, key), skipped)
        elif isinstance(value, list) and isinstance(schema.get("items"), dict):
            old_items = self._correlate(old, schema)
            for index, item in enumerate(value):
                old_item = old_items.get(self._list_key(item, schema)) if old_items else None
                yield from self._cel_causes(
                    item, old_item, schema["items"], _join(path, index), skipped
                )

    @staticmethod
    def _list_key(item: JSON, schema: JSON) -> Any:
        keys = schema.get("x-kubernetes-list-map-keys") or []
        if not isinstance(item, dict):
            return None
        return tuple(json.dumps(item.get(key)) for key in keys)

    def _correlate(self, old: JSON, schema: JSON) -> dict[Any, JSON] | None:
        """Only map-type lists correlate items with their old selves, as on a real server."""
        if schema.get("x-kubernetes-list-type") != "map" or not isinstance(old, list):
            return None
        return {self._list_key(item, schema): item for item in old}

    def _evaluate(self, rule: _Rule, value: JSON, old: JSON) -> str | None:
        try:
            activation: dict[str, Any] = {"self": json_to_cel(value)}
            if old is not None:
                activation["oldSelf"] = json_to_cel(old)
            outcome = rule.program.evaluate(activation)
        except Exception as exc:  # celpy raises CELEvalError and friends from deep inside
            outcome = exc
        if isinstance(outcome, Exception):
            missing = _UNDECLARED.search(str(outcome))
            if missing:
                raise _Unsupported(
                    f"cel-python has no {missing.group(1)!r} (a Kubernetes CEL library function)"
                )
            return f"rule {rule.rule!r}: evaluation error: {_cel_error(outcome)}"
        if outcome is True or (isinstance(outcome, BoolType) and bool(outcome)):
            return None
        if rule.message_program is not None:
            try:
                return str(rule.message_program.evaluate(activation))
            except Exception:  # a broken messageExpression falls back, as on a real server
                pass
        return rule.message or f"failed rule: {rule.rule}"


def _duplicates(value: JSON, schema: JSON, path: str) -> Iterator[Cause]:
    """``x-kubernetes-list-type`` ``map`` (by its keys) and ``set`` lists refuse an item equal
    to an earlier one: ``spec.steps[1]: Duplicate value: {"name":"same"}``."""
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if sub is not None and not (not path and key in _ROOT_FIELDS):
                yield from _duplicates(item, sub, _join(path, key))
        return
    if not isinstance(value, list):
        return
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: set[str] = set()
    for index, item in enumerate(value):
        identity: JSON = None
        if list_type == "map" and isinstance(item, dict):
            identity = {key: item[key] for key in keys if key in item}
        elif list_type == "set":
            identity = item
        if list_type in ("map", "set"):
            shown = json.dumps(identity, separators=(",", ":"), sort_keys=True)
            if shown in seen:
                where = _join(path, index)
                yield Cause(where, f"{where}: Duplicate value: {shown}", "FieldValueDuplicate")
            seen.add(shown)
        yield from _duplicates(item, schema.get("items"), _join(path, index))


def _cel_error(error: Exception) -> str:
    """What went wrong in a rule, in CEL's words rather than cel-python's internals."""
    text = str(error.args[0]) if error.args else type(error).__name__
    if "no matching overload" in text or "no such overload" in text:
        return "no such overload"
    if text.startswith("no such"):
        return text.split(" (in activation", 1)[0]
    return text.splitlines()[0] if text.strip() else type(error).__name__


def _describe(error: jsonschema.ValidationError, path: str) -> list[Cause]:
    """Phrase a jsonschema error the way kube-apiserver phrases the same failure."""
    kind = error.validator
    limit: Any = error.validator_value
    instance: Any = error.instance
    schema: Any = error.schema
    where = path or "<root>"
    shown = _render(instance)
    if kind == "required":
        missing = [name for name in limit if isinstance(instance, dict) and name not in instance]
        # jsonschema reports each missing property separately; keep one cause per property.
        name = next((n for n in missing if repr(n) in error.message), missing[0] if missing else "")
        field_path = _join(path, name)
        return [Cause(field_path, f"{field_path}: Required value", "FieldValueRequired")]
    if kind == "type" or (
        kind == "anyOf"
        and schema.get("anyOf")
        and all(set(sub) == {"type"} for sub in schema["anyOf"])
    ):
        wanted = (
            limit if kind == "type" else " or ".join(str(sub["type"]) for sub in schema["anyOf"])
        )
        if isinstance(wanted, list):
            wanted = " or ".join(wanted)
        return [
            Cause(
                path,
                f"{where}: Invalid value: {shown}: {where} in body must be of type"
                f" {wanted}: {shown}",
                "FieldValueTypeInvalid",
            )
        ]
    if kind == "enum":
        allowed = ", ".join(json.dumps(v) for v in limit)
        return [
            Cause(
                path,
                f"{where}: Unsupported value: {shown}: supported values: {allowed}",
                "FieldValueNotSupported",
            )
        ]
    if kind == "maxLength":
        return [
            Cause(
                path, f"{where}: Too long: may not be more than {limit} bytes", "FieldValueTooLong"
            )
        ]
    if kind == "maxItems":
        return [
            Cause(
                path,
                f"{where}: Too many: {len(instance)}: must have at most {limit} items",
                "FieldValueTooMany",
            )
        ]
    if kind == "uniqueItems":
        return [Cause(path, f"{where}: Duplicate value: {shown}", "FieldValueDuplicate")]
    or_equal_max = "" if schema.get("exclusiveMaximum") else "or equal to "
    or_equal_min = "" if schema.get("exclusiveMinimum") else "or equal to "
    phrases = {
        "maximum": f"should be less than {or_equal_max}{limit}",
        "minimum": f"should be greater than {or_equal_min}{limit}",
        "minLength": f"should be at least {limit} chars long",
        "minItems": f"should have at least {limit} items",
        "pattern": f"should match '{limit}'",
        "multipleOf": f"should be a multiple of {limit}",
        "maxProperties": f"should have at most {limit} properties",
        "minProperties": f"should have at least {limit} properties",
    }
    if kind in phrases:
        return [Cause(path, f"{where}: Invalid value: {shown}: {where} in body {phrases[kind]}")]
    return [Cause(path, f"{where}: Invalid value: {shown}: {error.message}")]
