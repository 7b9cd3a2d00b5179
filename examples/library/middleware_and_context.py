"""Middleware wraps steps (engine, then groups, then the step's own); the run context is
shared by every step of one run."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from kubesteps import GroupedSteps, Middleware, SimpleStep, StepContext, StepsEngine

order: list[str] = []


def labelled(label: str) -> Middleware:
    async def middleware(ctx: StepContext, call: Callable[[], Awaitable[Any]]) -> Any:
        order.append(f"{label}:{ctx.name}")
        return await call()

    return middleware


def login(ctx: StepContext) -> None:
    ctx.run.put("token", "s3cr3t", ttl=timedelta(minutes=5), tags={"credentials"})


def call_api(ctx: StepContext) -> None:
    token = ctx.run.get("token", type=str)  # TypeError naming the key if it is not a str
    assert token == "s3cr3t"
    assert ctx.run.delete_tagged("credentials") == 1


steps = [
    SimpleStep(name="login", run=login),
    GroupedSteps(
        name="api",
        middleware=[labelled("group")],
        steps=[SimpleStep(name="call_api", run=call_api, middleware=[labelled("step")])],
    ),
]


async def main() -> None:
    await StepsEngine(steps, middleware=[labelled("engine")]).run()
    assert order == [
        "engine:login",
        "engine:api",
        "group:api",
        "engine:call_api",
        "group:call_api",
        "step:call_api",
    ]
    print(order)


asyncio.run(main())
