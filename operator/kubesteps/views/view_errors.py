"""What goes wrong when viewing or steering a Pipeline, as typed errors with one-line
messages that name the object and the fix (the CLI prints ``str(error)``, nothing more)."""

from __future__ import annotations

from kubesteps.kube.client import ApiError


class ViewError(Exception):
    """Base: ``str()`` is the one line to show."""


class PipelineNotFound(ViewError):
    def __init__(self, namespace: str, name: str, hint: str = "") -> None:
        self.namespace, self.name = namespace, name
        super().__init__(
            f"pipeline {name!r} not found in namespace {namespace!r}{hint}"
            f" (kubectl get pipelines -n {namespace} lists them)"
        )


class StepNotFound(ViewError):
    def __init__(self, pipeline: str, step: str, hint: str = "") -> None:
        self.pipeline, self.step = pipeline, step
        super().__init__(f"pipeline {pipeline!r} has no step {step!r}{hint}")


class NotApplicable(ViewError):
    """The verb makes no sense in the state the Pipeline (or step) is in: ``state`` names
    it, e.g. ``run release-3 is Succeeded with no failed step``."""

    def __init__(self, verb: str, pipeline: str, state: str, fix: str = "") -> None:
        self.verb, self.pipeline, self.state = verb, pipeline, state
        super().__init__(
            f"cannot {verb} pipeline {pipeline!r}: {state}" + (f"; {fix}" if fix else "")
        )


class Forbidden(ViewError):
    """The API server refused the request for who is asking (RBAC, an admission policy)."""

    def __init__(self, verb: str, resource: str, namespace: str, detail: str = "") -> None:
        self.verb, self.resource, self.namespace, self.detail = verb, resource, namespace, detail
        where = f" in namespace {namespace}" if namespace else ""
        super().__init__(
            f"you may not {verb} {resource}{where}"
            + (f" (the server said: {detail})" if detail else "")
        )


class Unreachable(ViewError):
    def __init__(self, server: str, why: str) -> None:
        self.server = server
        super().__init__(f"cannot reach the Kubernetes API at {server}: {why}")


class ApiFailed(ViewError):
    """Any other refusal of the API server."""

    def __init__(self, doing: str, error: ApiError) -> None:
        self.error = error
        super().__init__(f"{doing} failed: {error.status} {error.reason}: {error.message}")


class WaitTimedOut(ViewError):
    def __init__(self, what: str, seconds: float, state: str) -> None:
        super().__init__(
            f"gave up after {seconds:g}s waiting for {what}; now: {state} (--timeout waits longer)"
        )


class VerbIgnored(ViewError):
    def __init__(self, verb: str, pipeline: str, why: str) -> None:
        super().__init__(f"the operator ignored {verb} of pipeline {pipeline!r}: {why}")


def api_failure(
    error: ApiError, *, verb: str, resource: str, namespace: str, doing: str
) -> ViewError:
    """The typed error for an API refusal (403: ``Forbidden``, the rest: ``ApiFailed``)."""
    if error.status == 403:
        return Forbidden(verb, resource, namespace, error.message)
    if error.status == 401:
        return ViewError(
            f"{doing} failed: the server does not accept your credentials"
            " (401 Unauthorized): log in again or check the kubeconfig"
        )
    return ApiFailed(doing, error)
