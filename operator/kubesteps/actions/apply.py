"""``apply``: create an object, or merge-patch it when it exists."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from kubesteps.actions.base import ActionContext, Outputs
from kubesteps.actions.common import api_call, check_namespace, owner_reference, resolve
from kubesteps.engine import PermanentError, RetryableError
from kubesteps.kube.meta import meta_of
from kubesteps.pipeline.params import ApplyParams


class ApplyAction:
    name: str = "apply"
    params: type[BaseModel] = ApplyParams

    async def run(self, ctx: ActionContext, params: ApplyParams) -> Outputs:
        kube = ctx.require_kube()
        manifest: dict[str, Any] = params.manifest.model_dump(by_alias=True)
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        meta: dict[str, Any] = manifest["metadata"]
        name = meta["name"]
        resource = await resolve(kube, api_version, kind)
        if resource is None:
            # Perhaps an earlier step installed its CRD a moment ago: discovery may lag.
            raise RetryableError(
                f"the server does not serve kind {kind!r} in {api_version!r} (yet?)"
            )

        namespace: str | None
        if resource.namespaced:
            if params.namespace:
                namespace, field = params.namespace, "with.namespace"
            else:
                namespace = meta.get("namespace") or ctx.namespace
                field = "with.manifest.metadata.namespace"
            meta["namespace"] = namespace
            where = f"{kind} {namespace}/{name}"
            check_namespace(ctx, namespace, field, f"{kind} {name}")
        else:
            if params.namespace is not None:
                raise PermanentError(
                    f"with.namespace: {kind} is cluster-scoped, so it has no namespace; "
                    "remove namespace"
                )
            meta.pop("namespace", None)
            namespace = None
            where = f"{kind} {name}"

        if params.owned:
            if namespace is None:
                raise PermanentError(
                    f"with.owned: {where} is cluster-scoped and cannot be owned by a Pipeline "
                    "(Kubernetes allows no namespaced owner of a cluster-scoped object); "
                    "set owned: false and remove it yourself when no longer needed"
                )
            if namespace != ctx.namespace:
                raise PermanentError(
                    f"with.owned: {where} is in namespace {namespace!r} but the Pipeline is in "
                    f"{ctx.namespace!r} (Kubernetes allows no owner in another namespace); "
                    f"apply it into {ctx.namespace!r} or set owned: false"
                )
            owner = owner_reference(ctx)
            others = [
                ref for ref in meta.get("ownerReferences") or [] if ref.get("uid") != owner["uid"]
            ]
            meta["ownerReferences"] = [*others, owner]

        with api_call(f"applying {where}"):
            applied = await kube.apply(manifest, namespace)
        applied_meta = meta_of(applied)
        return {
            "apiVersion": applied.get("apiVersion", api_version),
            "kind": applied.get("kind", kind),
            "name": applied_meta.name or name,
            "namespace": applied_meta.namespace,
            "uid": applied_meta.uid,
            "resourceVersion": applied_meta.resource_version,
        }
