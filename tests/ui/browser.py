"""Headless Chromium, driven by playwright-core from node (driver.cjs), for the UI tests.

``tests/tools/ensure-browser.sh`` installs what it needs (Debian's chromium, playwright-core
without a browser download) and says where; ``Browser`` speaks to driver.cjs one JSON line
per command, so every call is awaited and the event loop (the emulator's) keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
ENSURE = REPO / "tests" / "tools" / "ensure-browser.sh"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def playwright_home() -> Path:
    """The folder holding node_modules/playwright-core (installed on first use)."""
    result = subprocess.run([str(ENSURE)], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        pytest.fail(
            f"the browser tests need Chromium and playwright-core; {ENSURE.relative_to(REPO)}"
            f" exited with {result.returncode}:\n{result.stderr}\nRun `make browser` to see"
            " the install; docs/ui.md says what it needs.", pytrace=False)
    return Path(result.stdout.strip().splitlines()[-1])


class BrowserError(AssertionError):
    """A browser command failed (a selector never showed, a click found nothing...)."""


class Browser:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self._lock = asyncio.Lock()

    @classmethod
    async def start(cls, home: Path) -> Browser:
        process = await asyncio.create_subprocess_exec(
            "node", str(HERE / "driver.cjs"), str(home), CHROMIUM,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, limit=64 * 1024 * 1024)
        return cls(process)

    async def call(self, op: str, **args: Any) -> Any:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        async with self._lock:
            self.process.stdin.write((json.dumps({"op": op, **args}) + "\n").encode())
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            error = (await self.process.stderr.read()).decode()
            raise BrowserError(f"the browser driver ended: {error.strip()}")
        answer = json.loads(line)
        if "error" in answer:
            logged = await self.console()
            raise BrowserError(f"{op} {args}: {answer['error']}"
                               + (f"\npage console: {logged}" if logged else ""))
        return answer["ok"]

    async def console(self) -> list[str]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(b'{"op": "console"}\n')
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        return list(json.loads(line).get("ok") or []) if line else []

    async def goto(self, url: str) -> int:
        return int(await self.call("goto", url=url))

    async def click(self, selector: str) -> None:
        await self.call("click", selector=selector)

    async def fill(self, selector: str, value: str) -> None:
        await self.call("fill", selector=selector, value=value)

    async def wait(self, selector: str, *, state: str = "visible", within: float = 20) -> None:
        await self.call("wait", selector=selector, state=state, timeout=int(within * 1000))

    async def wait_until(self, expression: str, *, within: float = 20) -> None:
        await self.call("waitFunction", expression=expression, timeout=int(within * 1000))

    async def text(self, selector: str) -> str:
        return str(await self.call("text", selector=selector) or "")

    async def count(self, selector: str) -> int:
        return int(await self.call("count", selector=selector))

    async def evaluate(self, expression: str) -> Any:
        return await self.call("evaluate", expression=expression)

    async def viewport(self, width: int, height: int) -> None:
        await self.call("viewport", width=width, height=height)

    async def screenshot(self, file: Path, *, full_page: bool = True) -> Path:
        file.parent.mkdir(parents=True, exist_ok=True)
        await self.call("screenshot", file=str(file), fullPage=full_page)
        return file

    async def close(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(BrowserError, TimeoutError, BrokenPipeError,
                                     ConnectionResetError):
                await asyncio.wait_for(self.call("close"), 10)
            if self.process.stdin is not None:
                self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
