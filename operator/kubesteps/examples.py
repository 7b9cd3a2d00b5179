"""Example ``python`` actions used by the Pipelines in ``examples/`` and the demo.

They are registered through the ``kubesteps.actions`` entry-point group in
``pyproject.toml``, exactly as a user's own package would register its actions.
"""

from __future__ import annotations

from typing import Any

from kubesteps.actions.base import ActionContext, Outputs


async def greet(ctx: ActionContext, args: dict[str, Any]) -> Outputs:
    """Return a greeting for ``args['who']``; the outputs are visible to later steps."""
    who = str(args.get("who") or "world")
    greeting = str(args.get("greeting") or f"Hello, {who}!")
    return {"greeting": greeting, "who": who, "step": ctx.name}
