"""Malformed Pipelines, as data, with who must refuse each one and how.

Every case says what ``validate()`` reports (always: it is the operator's gate) and what
the CRD schema reports (when the API server itself can refuse the object; ``None`` when only
the operator can tell). Expectations are a field path and a key part of the message, so
an end-to-end test can reuse the table against the operator (422 from the API server for
``schema`` cases, ``Ready=False/InvalidSpec`` for the others).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Expect:
    """A refusal: the field path it names and a fragment of its message."""

    path: str
    message: str


@dataclass(frozen=True)
class Malformed:
    """One malformed Pipeline and the refusals it must get."""

    id: str
    manifest: dict[str, Any]
    validate: Expect
    schema: Expect | None


def delay(name: str, **options: Any) -> dict[str, Any]:
    """A valid action step; ``options`` override or add fields."""
    return {"name": name, "action": "delay", "with": {"duration": "1s"}, **options}


def pipeline(*steps: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A Pipeline manifest with these steps (one delay step if none are given)."""
    return {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "metadata": {"name": "demo", "namespace": "default"},
        "spec": {"steps": list(steps) or [delay("first")], **spec},
    }


def _with(manifest: dict[str, Any], **fields: Any) -> dict[str, Any]:
    changed = copy.deepcopy(manifest)
    changed.update(fields)
    return changed


def _nested(depth: int) -> dict[str, Any]:
    """A chain of groups ``depth`` steps deep, ending in an action."""
    step = delay(f"level{depth}")
    for level in range(depth - 1, 0, -1):
        step = {"name": f"level{level}", "group": {"steps": [step]}}
    return step


def _http(**params: Any) -> dict[str, Any]:
    return {"name": "call", "action": "http", "with": {"url": "https://example.com", **params}}


MALFORMED: list[Malformed] = [
    Malformed(
        "suspend-not-a-boolean",
        pipeline(suspend="yes"),
        Expect("spec.suspend", "must be a boolean"),
        Expect("spec.suspend", "is not of type 'boolean'"),
    ),
    Malformed(
        "steps-not-a-list",
        pipeline(steps={"name": "x"}),
        Expect("spec.steps", "must be a list"),
        Expect("spec.steps", "is not of type 'array'"),
    ),
    Malformed(
        "no-steps",
        pipeline(steps=[]),
        Expect("spec.steps", "at least 1 item"),
        Expect("spec.steps", "should be non-empty"),
    ),
    Malformed(
        "step-name-not-dns-label",
        pipeline(delay("Fetch_Data")),
        Expect("spec.steps[0].name", "DNS-1123 label"),
        Expect("spec.steps[0].name", "does not match"),
    ),
    Malformed(
        "step-name-too-long",
        pipeline(delay("a" * 64)),
        Expect("spec.steps[0].name", "at most 63 characters"),
        Expect("spec.steps[0].name", "is too long"),
    ),
    Malformed(
        "step-without-name",
        pipeline({"action": "delay", "with": {"duration": "1s"}}),
        Expect("spec.steps[0].name", "is required"),
        Expect("spec.steps[0]", "'name' is a required property"),
    ),
    Malformed(
        "unknown-field-in-step",
        pipeline(delay("first", retries=3)),
        Expect("spec.steps[0].retries", "unknown field 'retries' — did you mean 'retry'?"),
        Expect("spec.steps[0]", "'retries' was unexpected"),
    ),
    Malformed(
        "unknown-action",
        pipeline({"name": "first", "action": "htp", "with": {}}),
        Expect("spec.steps[0].action", "unknown action 'htp' — did you mean 'http'?"),
        Expect("spec.steps[0].action", "is not one of"),
    ),
    Malformed(
        "duplicate-names-in-one-list",
        pipeline(delay("same"), delay("same")),
        Expect("spec.steps[1].name", "duplicate step name 'same'"),
        Expect("spec.steps[1]", "Duplicate value"),
    ),
    Malformed(
        "duplicate-names-across-levels",
        pipeline(delay("same"), {"name": "outer", "group": {"steps": [delay("same")]}}),
        Expect("spec.steps[1].group.steps[0].name", "duplicate step name 'same'"),
        None,
    ),
    Malformed(
        "name-clashes-with-foreach-sub-steps",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[1, 2]",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            },
            delay("fan-1"),
        ),
        Expect("spec.steps[1].name", "clashes with the sub-steps forEach step 'fan'"),
        None,
    ),
    Malformed(
        "name-clashes-with-a-step-in-a-foreach-template",
        pipeline(
            {
                "name": "fan",
                "forEach": {"items": "[1, 2]", "step": {"group": {"steps": [delay("check")]}}},
            },
            delay("check-0"),
        ),
        Expect(
            "spec.steps[1].name",
            "step name 'check-0' clashes with step 'check' at "
            "spec.steps[0].forEach.step.group.steps[0].name, which runs once per forEach item "
            "as 'check-<index>'",
        ),
        None,
    ),
    Malformed(
        "cel-syntax-error-in-when",
        pipeline(delay("first", when=["self.spec.suspend =="])),
        Expect("spec.steps[0].when[0]", "syntax error at line 1, column"),
        None,
    ),
    Malformed(
        "cel-unknown-variable-in-when",
        pipeline(delay("first", when=["item == 1"])),
        Expect(
            "spec.steps[0].when[0]", "unknown variable 'item'; available here: params, self, steps"
        ),
        None,
    ),
    Malformed(
        "template-braces-in-when",
        pipeline(delay("first", when=["${ true }"])),
        Expect("spec.steps[0].when[0]", "without ${ }"),
        None,
    ),
    Malformed(
        "when-not-a-list",
        pipeline(delay("first", when="true")),
        Expect("spec.steps[0].when", "must be a list"),
        Expect("spec.steps[0].when", "is not of type 'array'"),
    ),
    Malformed(
        "cel-unknown-step-reference",
        pipeline(delay("first", when=["steps.nothing.phase == 'Succeeded'"])),
        Expect("spec.steps[0].when[0]", "no step is named 'nothing'"),
        None,
    ),
    Malformed(
        "cel-syntax-error-in-foreach-items",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[1, 2",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            }
        ),
        Expect("spec.steps[0].forEach.items", "syntax error"),
        None,
    ),
    Malformed(
        "cel-syntax-error-in-with-template",
        pipeline(delay("first", **{"with": {"duration": "${ 1 + }"}})),
        Expect("spec.steps[0].with.duration", "syntax error"),
        None,
    ),
    Malformed(
        "unterminated-template",
        pipeline(delay("first", **{"with": {"duration": "${ self.spec"}})),
        Expect("spec.steps[0].with.duration", "has no closing '}'"),
        None,
    ),
    Malformed(
        "duration-unknown-unit",
        pipeline(delay("first", timeout="1d")),
        Expect("spec.steps[0].timeout", "unknown unit 'd'"),
        Expect("spec.steps[0].timeout", "does not match"),
    ),
    Malformed(
        "duration-without-unit",
        pipeline(delay("first", timeout="30")),
        Expect("spec.steps[0].timeout", "missing unit after '30'"),
        Expect("spec.steps[0].timeout", "does not match"),
    ),
    Malformed(
        "duration-negative",
        pipeline(timeout="-5m"),
        Expect("spec.timeout", "negative duration"),
        Expect("spec.timeout", "does not match"),
    ),
    Malformed(
        "duration-not-a-string",
        pipeline(resyncPeriod=600),
        Expect("spec.resyncPeriod", "must be a string like '30s'"),
        Expect("spec.resyncPeriod", "is not of type 'string'"),
    ),
    Malformed(
        "throttle-interval-zero",
        pipeline(delay("first", throttle={"interval": "0s"})),
        Expect("spec.steps[0].throttle.interval", "must be greater than 0"),
        Expect("spec.steps[0].throttle.interval", "does not match"),
    ),
    Malformed(
        "throttle-without-interval",
        pipeline(delay("first", throttle={"ensureSuccess": True})),
        Expect("spec.steps[0].throttle.interval", "is required"),
        Expect("spec.steps[0].throttle", "'interval' is a required property"),
    ),
    Malformed(
        "throttle-initial-delay-beyond-interval",
        pipeline(delay("first", throttle={"interval": "1m", "initialDelay": "5m"})),
        Expect("spec.steps[0].throttle.initialDelay", "must not be longer than the interval"),
        None,
    ),
    Malformed(
        "retry-limit-negative",
        pipeline(delay("first", retry={"limit": -1})),
        Expect("spec.steps[0].retry.limit", "must be at least 0"),
        Expect("spec.steps[0].retry.limit", "is less than the minimum of 0"),
    ),
    Malformed(
        "retry-limit-too-large",
        pipeline(delay("first", retry={"limit": 1000})),
        Expect("spec.steps[0].retry.limit", "must be at most 100"),
        Expect("spec.steps[0].retry.limit", "is greater than the maximum of 100"),
    ),
    Malformed(
        "backoff-factor-below-one",
        pipeline(delay("first", retry={"backoff": {"factor": 0.5}})),
        Expect("spec.steps[0].retry.backoff.factor", "must be at least 1"),
        Expect("spec.steps[0].retry.backoff.factor", "is less than the minimum of 1"),
    ),
    Malformed(
        "backoff-max-below-initial",
        pipeline(delay("first", retry={"backoff": {"initial": "1m", "max": "10s"}})),
        Expect("spec.steps[0].retry.backoff.max", "must not be shorter than initial"),
        None,
    ),
    Malformed(
        "condition-not-camel-case",
        pipeline(delay("first", condition="fetched")),
        Expect("spec.steps[0].condition", "CamelCase"),
        Expect("spec.steps[0].condition", "does not match"),
    ),
    Malformed(
        "condition-reserved",
        pipeline(delay("first", condition="Ready")),
        Expect("spec.steps[0].condition", "'Ready' is reserved"),
        None,
    ),
    Malformed(
        "condition-duplicate",
        pipeline(delay("first", condition="Done"), delay("second", condition="Done")),
        Expect("spec.steps[1].condition", "duplicate condition 'Done'"),
        None,
    ),
    Malformed(
        "two-step-kinds",
        pipeline(delay("first", group={"steps": [delay("inner")]})),
        Expect(
            "spec.steps[0]",
            "exactly one of action, parallel, group, forEach, switch, uses; found: action, group",
        ),
        Expect("spec.steps[0]", "exactly one of action, parallel, group, forEach"),
    ),
    Malformed(
        "no-step-kind",
        pipeline({"name": "first"}),
        Expect("spec.steps[0]", "found: none"),
        Expect("spec.steps[0]", "exactly one of action, parallel, group, forEach"),
    ),
    Malformed(
        "with-without-action",
        pipeline({"name": "first", "group": {"steps": [delay("inner")]}, "with": {"a": 1}}),
        Expect("spec.steps[0].with", "only allowed together with action"),
        Expect("spec.steps[0]", "with is only allowed together with action"),
    ),
    Malformed(
        "nesting-too-deep",
        pipeline(_nested(5)),
        Expect(
            "spec.steps[0].group.steps[0].group.steps[0].group.steps[0].group",
            "steps nest at most 4 levels deep",
        ),
        Expect(
            "spec.steps[0].group.steps[0].group.steps[0].group.steps[0]",
            "steps nest at most 4 levels deep",
        ),
    ),
    Malformed(
        "continue-on-error-in-parallel",
        pipeline({"name": "side", "parallel": {"steps": [delay("a", continueOnError=True)]}}),
        Expect("spec.steps[0].parallel.steps[0].continueOnError", "not allowed on a sub-step"),
        Expect("spec.steps[0].parallel", "not allowed on sub-steps of parallel"),
    ),
    Malformed(
        "finish-on-success-in-foreach",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[1]",
                    "step": {
                        "action": "delay",
                        "with": {"duration": "1s"},
                        "finishOnSuccess": True,
                    },
                },
            }
        ),
        Expect("spec.steps[0].forEach.step.finishOnSuccess", "not allowed on a sub-step"),
        Expect("spec.steps[0].forEach", "not allowed on sub-steps of parallel or forEach"),
    ),
    Malformed(
        "parallel-max-concurrency-zero",
        pipeline({"name": "side", "parallel": {"maxConcurrency": 0, "steps": [delay("a")]}}),
        Expect("spec.steps[0].parallel.maxConcurrency", "must be at least 1"),
        Expect("spec.steps[0].parallel.maxConcurrency", "is less than the minimum of 1"),
    ),
    Malformed(
        "foreach-template-with-name",
        pipeline({"name": "fan", "forEach": {"items": "[1]", "step": delay("named")}}),
        Expect("spec.steps[0].forEach.step.name", "a forEach template has no name"),
        Expect("spec.steps[0].forEach.step", "'name' was unexpected"),
    ),
    Malformed(
        "foreach-item-named-self",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[1]",
                    "as": "self",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            }
        ),
        Expect("spec.steps[0].forEach.as", "cannot name the item"),
        None,
    ),
    Malformed(
        "condition-inside-foreach-template",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[1]",
                    "step": {"group": {"steps": [delay("inner", condition="InnerDone")]}},
                },
            }
        ),
        Expect(
            "spec.steps[0].forEach.step.group.steps[0].condition", "not allowed inside a forEach"
        ),
        None,
    ),
    Malformed(
        "too-many-top-level-steps",
        pipeline(*[delay(f"s{index}") for index in range(101)]),
        Expect("spec.steps", "must have at most 100 items, got 101"),
        Expect("spec.steps", "is too long"),
    ),
    Malformed(
        "too-many-steps-in-all",
        pipeline(
            *[
                {
                    "name": f"g{group}",
                    "group": {"steps": [delay(f"g{group}-s{index}") for index in range(16)]},
                }
                for group in range(30)
            ]
        ),
        Expect("spec.steps", "510 steps in all"),
        None,
    ),
    Malformed(
        "oversized-manifest",
        pipeline(
            {
                "name": "big",
                "action": "python",
                "with": {
                    "function": "kubesteps.examples.greet",
                    "args": {"blob": "x" * (300 * 1024)},
                },
            }
        ),
        Expect("", "at most 256 KiB"),
        None,
    ),
    Malformed(
        "wrong-api-version",
        _with(pipeline(), apiVersion="kubesteps.dev/v1"),
        Expect("apiVersion", "must be 'kubesteps.dev/v1alpha1'"),
        None,
    ),
    Malformed(
        "wrong-kind",
        _with(pipeline(), kind="Workflow"),
        Expect("kind", "must be 'Pipeline'"),
        None,
    ),
    Malformed(
        "metadata-without-name",
        _with(pipeline(), metadata={"namespace": "default"}),
        Expect("metadata.name", "is required"),
        None,
    ),
    Malformed(
        "delay-without-duration",
        pipeline({"name": "wait", "action": "delay", "with": {}}),
        Expect("spec.steps[0].with", "give either duration (e.g. 30s) or until"),
        None,
    ),
    Malformed(
        "http-inline-authorization",
        pipeline(_http(headers={"Authorization": "Bearer s3cr3t"})),
        Expect("spec.steps[0].with.headers", "use secretRef"),
        None,
    ),
    Malformed(
        "http-not-an-http-url",
        pipeline(_http(url="ftp://example.com/file")),
        Expect("spec.steps[0].with.url", "must be an http:// or https:// URL"),
        None,
    ),
    Malformed(
        "http-unknown-method",
        pipeline(_http(method="FETCH")),
        Expect("spec.steps[0].with.method", "must be one of 'GET'"),
        None,
    ),
    Malformed(
        "http-bad-expected-status",
        pipeline(_http(expectedStatus=["2xx", 700])),
        Expect("spec.steps[0].with.expectedStatus[1]", "within 100..599"),
        None,
    ),
    Malformed(
        "wait-for-condition-and-json-path",
        pipeline(
            {
                "name": "wait",
                "action": "waitFor",
                "with": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "x",
                    "condition": {"type": "Ready"},
                    "jsonPath": "{.data.a}",
                    "value": "b",
                },
            }
        ),
        Expect("spec.steps[0].with", "either condition or jsonPath"),
        None,
    ),
    Malformed(
        "apply-manifest-without-kind",
        pipeline(
            {
                "name": "put",
                "action": "apply",
                "with": {"manifest": {"apiVersion": "v1", "metadata": {"name": "x"}}},
            }
        ),
        Expect("spec.steps[0].with.manifest.kind", "is required"),
        None,
    ),
    Malformed(
        "python-function-not-a-dotted-name",
        pipeline({"name": "call", "action": "python", "with": {"function": "greet me"}}),
        Expect("spec.steps[0].with.function", "a dotted Python name"),
        None,
    ),
    Malformed(
        "approval-name-too-long-for-its-annotation",
        pipeline({"name": "a" * 56, "action": "approval", "with": {}}),
        Expect("spec.steps[0].name", "an approval step's name may be at most 55 characters"),
        None,
    ),
    Malformed(
        "unknown-action-parameter",
        pipeline(delay("first", **{"with": {"duration": "1s", "jitter": "1s"}})),
        Expect(
            "spec.steps[0].with.jitter", "unknown field 'jitter'; allowed fields here: duration"
        ),
        None,
    ),
    Malformed(
        "foreach-items-always-a-string",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "'eu'",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            }
        ),
        Expect("spec.steps[0].forEach.items", "must give a list"),
        None,
    ),
    Malformed(
        "foreach-over-too-many-items",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "[" + ",".join(["1"] * 201) + "]",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            }
        ),
        Expect("spec.steps[0].forEach.items", "a forEach runs at most 200"),
        None,
    ),
    # Found before anything runs, where the operator used to find them only at run time.
    Malformed(
        "wait-for-json-path-that-does-not-compile",
        pipeline(
            {
                "name": "wait",
                "action": "waitFor",
                "with": {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": "x",
                    "jsonPath": ".data[?(@.a==",
                    "value": "b",
                },
            }
        ),
        Expect("spec.steps[0].with.jsonPath", "is not a valid JSONPath"),
        None,
    ),
    Malformed(
        "job-quantity-malformed",
        pipeline(
            {
                "name": "build",
                "action": "job",
                "with": {"image": "busybox", "resources": {"limits": {"memory": "1.5.5Gi"}}},
            }
        ),
        Expect("spec.steps[0].with.resources.limits.memory", "must be a Kubernetes quantity"),
        None,
    ),
    Malformed(
        "job-request-above-its-limit",
        pipeline(
            {
                "name": "build",
                "action": "job",
                "with": {
                    "image": "busybox",
                    "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1500m"}},
                },
            }
        ),
        Expect(
            "spec.steps[0].with.resources.requests.cpu", "must not be more than limits.cpu (1500m)"
        ),
        None,
    ),
    Malformed(
        "http-url-with-a-port-out-of-range",
        pipeline(_http(url="https://example.com:99999/hook")),
        Expect("spec.steps[0].with.url", "is not a valid URL: Port out of range"),
        None,
    ),
    Malformed(
        "when-that-is-always-a-string",
        pipeline(delay("first", when=["'yes'"])),
        Expect("spec.steps[0].when[0]", "a predicate must give true or false"),
        None,
    ),
    Malformed(
        "constant-template-that-renders-a-bad-duration",
        pipeline(delay("first", **{"with": {"duration": "${ '5' + 'x' }"}})),
        Expect("spec.steps[0].with.duration", "unknown unit 'x'"),
        None,
    ),
    Malformed(
        "constant-template-that-fails-to-evaluate",
        pipeline(delay("first", **{"with": {"duration": "${ 1 / 0 }"}})),
        Expect("spec.steps[0].with.duration", "in CEL expression '1 / 0'"),
        None,
    ),
    Malformed(
        "apply-owned-object-in-another-namespace",
        pipeline(
            {
                "name": "put",
                "action": "apply",
                "with": {
                    "manifest": {
                        "apiVersion": "v1",
                        "kind": "ConfigMap",
                        "metadata": {"name": "x", "namespace": "elsewhere"},
                    }
                },
            }
        ),
        Expect(
            "spec.steps[0].with.manifest.metadata.namespace",
            "an owned object must be in the Pipeline's namespace 'default'",
        ),
        None,
    ),
    Malformed(
        "cel-step-reference-with-a-typo",
        pipeline(delay("fetch"), delay("after", when=["steps.fetc.phase == 'Succeeded'"])),
        Expect("spec.steps[1].when[0]", "no step is named 'fetc'"),
        None,
    ),
    Malformed(
        "cel-variable-with-a-typo",
        pipeline(delay("first", when=["slef.metadata.name == 'demo'"])),
        Expect("spec.steps[0].when[0]", "unknown variable 'slef'"),
        None,
    ),
    Malformed(
        "cel-spec-field-that-does-not-exist",
        pipeline(
            {
                "name": "fan",
                "forEach": {
                    "items": "self.spec.targets",
                    "step": {"action": "delay", "with": {"duration": "1s"}},
                },
            }
        ),
        Expect("spec.steps[0].forEach.items", "a Pipeline's spec has no field 'targets'"),
        None,
    ),
    Malformed(
        "kind-one-edit-away",
        _with(pipeline(), kind="Pipline"),
        Expect("kind", "did you mean 'Pipeline'?"),
        None,
    ),
    Malformed(
        "api-version-with-a-typo",
        _with(pipeline(), apiVersion="kubesteps.dev/v1alpah1"),
        Expect("apiVersion", "did you mean 'kubesteps.dev/v1alpha1'?"),
        None,
    ),
    Malformed(
        "partition-key-template-that-no-value-fills",
        pipeline(
            delay(
                "probe",
                throttle={"interval": "5m", "partitionKey": "${ self.metadata.labels.team }"},
            )
        ),
        Expect("spec.steps[0].throttle.partitionKey", "no such member in mapping: 'labels'"),
        None,
    ),
    Malformed(
        "many-problems-at-once",
        pipeline(*[delay(f"s{index}", timeout=f"{index}d") for index in range(22)], suspend="no"),
        Expect("spec.steps[21].timeout", "unknown unit 'd'"),
        Expect("spec.steps[21].timeout", "does not match"),
    ),
]
