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
import threading
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
            " the install; docs/ui.md says what it needs.",
            pytrace=False,
        )
    return Path(result.stdout.strip().splitlines()[-1])


class BrowserError(AssertionError):
    """A browser command failed (a selector never showed, a click found nothing...)."""


class Browser:
    """One Chromium for the session (started once: it takes seconds); ``fresh()`` gives each
    test a new context. Calls are sent from a worker thread, so the event loop (the
    emulator's, the operator's) keeps serving while the browser waits."""

    def __init__(self, home: Path) -> None:
        self.process = subprocess.Popen(
            ["node", str(HERE / "driver.cjs"), str(home), CHROMIUM],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self._lock = threading.Lock()

    def _roundtrip(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        with self._lock:
            self.process.stdin.write(json.dumps(command) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        if not line:
            assert self.process.stderr is not None
            raise BrowserError(f"the browser driver ended: {self.process.stderr.read().strip()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def call(self, op: str, **args: Any) -> Any:
        answer = await asyncio.to_thread(self._roundtrip, {"op": op, **args})
        if "error" in answer:
            logged = await self.console()
            raise BrowserError(
                f"{op} {args}: {answer['error']}" + (f"\npage console: {logged}" if logged else "")
            )
        return answer["ok"]

    async def console(self) -> list[str]:
        answer = await asyncio.to_thread(self._roundtrip, {"op": "console"})
        return list(answer.get("ok") or [])

    async def fresh(self) -> None:
        await self.call("fresh")

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

    def close(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(BrowserError, BrokenPipeError, OSError):
                self._roundtrip({"op": "close"})
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
