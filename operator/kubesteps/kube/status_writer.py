"""Writing an object's ``status`` subresource: one patch, retried when it is worth it.

A write is a merge patch, or a JSON patch of the entries that changed when that is smaller
(``kubesteps.keepers.status_keeper`` decides; both are conditional on a resourceVersion).

The write follows the API client's retry policy (``kubesteps.kube.api_retry``: throttling,
server errors and lost answers), attempt by attempt here so that every attempt is counted.
Conflicts (409) are not retried: a stale ``resourceVersion`` means somebody else wrote in
between, and only the caller can rebuild its change on top of theirs. The re-read that
follows goes through the client, with the same policy.

Every string written is passed through the process's redactor first
(``kubesteps.telemetry.redaction``): no credential the operator resolved reaches a status.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kubesteps.kube import api_retry as retry_policy
from kubesteps.kube.client import JSON_PATCH, MERGE, ApiError, KubeClient, Obj
from kubesteps.kube.meta import meta_of
from kubesteps.telemetry.redaction import redact_json


@dataclass(frozen=True, slots=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str | None
    name: str

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = meta_of(body)
        return cls(body["apiVersion"], body["kind"], meta.namespace or None, meta.name)


class StatusWriter:
    """Patches the ``status`` of one object, with retries for transient API errors.

    ``on_write(conflict=...)`` is told about every write attempt that reached the server,
    retries included; a retry is also an event ``retry`` on the current span.
    """

    def __init__(
        self,
        client: KubeClient,
        ref: ObjectRef,
        *,
        attempts: int = 5,
        on_write: Callable[..., None] | None = None,
    ) -> None:
        self.client = client
        self.ref = ref
        self.attempts = attempts
        self.on_write = on_write

    async def patch(self, status: Mapping[str, Any], resource_version: str | None) -> Obj:
        """Merge-patch ``status``; with ``resource_version`` the write is conditional (409)."""
        body: dict[str, Any] = {"status": redact_json(dict(status))}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        retrying = retry_policy.retrying(self.attempts, sleep=self.client.sleep)
        result: Obj = await retrying(self._send, body)
        return result

    async def patch_operations(
        self, operations: list[dict[str, Any]], resource_version: str
    ) -> Obj:
        """Apply a JSON patch (RFC 6902) to the status of the version ``resource_version``.

        The first operation sets ``metadata.resourceVersion`` to that version, which makes
        the write conditional as a merge patch's is: a newer object answers 409 Conflict.
        """
        body: list[dict[str, Any]] = [
            {"op": "replace", "path": "/metadata/resourceVersion", "value": resource_version},
        ]
        for operation in operations:
            if "value" in operation:
                operation = {**operation, "value": redact_json(operation["value"])}
            body.append(operation)
        retrying = retry_policy.retrying(self.attempts, sleep=self.client.sleep)
        result: Obj = await retrying(self._send, body, JSON_PATCH)
        return result

    async def _send(self, body: Any, content_type: str = MERGE) -> Obj:
        ref = self.ref
        try:
            result = await self.client.patch(
                ref.api_version,
                ref.kind,
                ref.name,
                ref.namespace,
                body,
                subresource="status",
                content_type=content_type,
                retry=False,
            )
        except ApiError as error:
            # The server answered: the attempt counts, whatever it said.
            if self.on_write is not None:
                self.on_write(conflict=error.status == 409)
            raise
        if self.on_write is not None:
            self.on_write(conflict=False)
        return result

    async def read(self) -> Obj | None:
        ref = self.ref
        return await self.client.get(ref.api_version, ref.kind, ref.name, ref.namespace)

    async def remove_annotations(self, expected: Mapping[str, str]) -> Obj | None:
        """Remove annotations that still hold the values in ``expected``, in one JSON patch.

        Each removal is guarded by a ``test`` of its value, so one set anew since it was read
        (a new token, a new answer) stays. When a guard fails, the server refuses the whole
        patch (422): then each annotation is tried on its own.
        """
        ref = self.ref
        patches = [_guarded_removal(key, value) for key, value in sorted(expected.items())]
        try:
            return await self.client.patch(
                ref.api_version,
                ref.kind,
                ref.name,
                ref.namespace,
                [op for ops in patches for op in ops],
                content_type=JSON_PATCH,
            )
        except ApiError as error:
            if error.status != 422 or len(patches) == 1:
                if error.status in (404, 422):
                    return None  # gone, or the value changed: nothing of ours to remove
                raise
        result = None
        for ops in patches:
            try:
                result = await self.client.patch(
                    ref.api_version, ref.kind, ref.name, ref.namespace, ops, content_type=JSON_PATCH
                )
            except ApiError as error:
                if error.status not in (404, 422):
                    raise
        return result


def _guarded_removal(key: str, value: str) -> list[dict[str, Any]]:
    path = "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")
    return [{"op": "test", "path": path, "value": value}, {"op": "remove", "path": path}]
