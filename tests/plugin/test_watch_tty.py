"""`kubectl kubesteps watch` on a real terminal: typed into a shell in tmux (send-keys), the
screen read back (capture-pane). The tree redraws in place, in colour, and the command
exits with the run's result once it settles."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from kubesteps.kube.client import KubeClient

from .conftest import API, SCRIPTS
from .test_kubectl_plugin import store
from .test_render import LIVE

TMUX = shutil.which("tmux") or "/usr/bin/tmux"
pytestmark = [
    pytest.mark.slow,  # starts tmux, kubectl and the plugin
    pytest.mark.skipif(not Path(TMUX).is_file(), reason="tmux is not installed"),
]


class Terminal:
    """A tmux session of its own (private socket), 140x40, running bash."""

    def __init__(self, socket: Path) -> None:
        self.socket = socket

    async def tmux(self, *args: str) -> str:
        process = await asyncio.create_subprocess_exec(
            TMUX,
            "-S",
            str(self.socket),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, f"tmux {' '.join(args)}: {err.decode()}"
        return out.decode()

    async def screen(self, *, colours: bool = False) -> str:
        return await self.tmux("capture-pane", "-p", *(["-e"] if colours else []), "-t", "t")

    async def until(self, check: Callable[[str], bool], within: float = 60) -> str:
        """The screen once ``check`` holds; a failure shows the screen as it was."""
        text = ""
        try:
            async with asyncio.timeout(within):
                while True:
                    text = await self.screen()
                    if check(text):
                        return text
                    await asyncio.sleep(0.2)
        except TimeoutError:
            pytest.fail(f"not on the screen after {within:g}s; the screen:\n{text}")


@pytest.fixture
async def terminal(tmp_path: Path, kubeconfig: Path, kubectl_binary: Path):  # type: ignore[no-untyped-def]
    term = Terminal(tmp_path / "tmux.sock")
    path = os.pathsep.join([str(SCRIPTS), str(kubectl_binary.parent), "/usr/bin", "/bin"])
    # The shell's environment is set by `env` in its command line: tmux 3.3's `new-session
    # -e` reaches the session's environment, but its first pane still gets the server's
    # PATH (and so whatever kubectl is first on the machine's PATH).
    command = shlex.join(
        [
            "env",
            f"KUBECONFIG={kubeconfig}",
            f"PATH={path}",
            f"HOME={tmp_path}",
            "TERM=xterm-256color",
            "bash",
            "--norc",
            "--noprofile",
        ]
    )
    await term.tmux(
        "-f", "/dev/null", "new-session", "-d", "-s", "t", "-x", "140", "-y", "40", command
    )
    yield term
    await term.tmux("kill-server")


def exited(screen: str) -> bool:
    """The shell printed the command's exit code (not just the typed ``echo EXIT=$?``)."""
    return re.search(r"^EXIT=\d+", screen, re.MULTILINE) is not None


def settled(obj: dict[str, object]) -> dict[str, object]:
    """The release example's status once approved: every step succeeded, the run too."""
    status = copy.deepcopy(obj["status"])
    assert isinstance(status, dict)
    for step in status["steps"]:
        step.update(
            phase="Succeeded",
            reason="Succeeded",
            message="completed",
            attempts=1,
            startedAt=step.get("startedAt") or "2026-03-01T12:00:05Z",
            finishedAt="2026-03-01T12:09:00Z",
        )
    status["steps"].append(
        {
            "name": "announce",
            "phase": "Succeeded",
            "attempts": 1,
            "run": 1,
            "startedAt": "2026-03-01T12:09:00Z",
            "finishedAt": "2026-03-01T12:09:01Z",
            "message": "completed",
        }
    )
    status["run"].update(phase="Succeeded", reason="Succeeded", finishedAt="2026-03-01T12:09:01Z")
    status["currentStep"] = ""
    return status


async def test_watch_redraws_the_tree_in_place_and_exits_on_settle(
    api: KubeClient, terminal: Terminal
) -> None:
    await store(api, LIVE["release"])
    await terminal.tmux(
        "send-keys", "-t", "t", "kubectl kubesteps watch release; echo EXIT=$?", "Enter"
    )
    waiting = await terminal.until(lambda s: "approve-release  Waiting" in s)
    assert "run release-1  Running" in waiting
    coloured = await terminal.screen(colours=True)
    assert "\x1b[" in coloured  # a terminal: phases in colour

    await api.patch(
        API,
        "Pipeline",
        "release",
        "default",
        {"status": settled(LIVE["release"])},
        subresource="status",
    )
    done = await terminal.until(exited)
    assert "EXIT=0" in done
    assert "run release-1  Succeeded" in done
    assert "└─ ✓ announce" in done
    # Redrawn in place: the final screen holds one tree, not one per version.
    assert done.count("STEP ") == 1
    assert "Waiting" not in done


async def test_ctrl_c_stops_watch_without_a_traceback(api: KubeClient, terminal: Terminal) -> None:
    await store(api, LIVE["release"])
    await terminal.tmux(
        "send-keys", "-t", "t", "kubectl kubesteps watch release; echo EXIT=$?", "Enter"
    )
    await terminal.until(lambda s: "approve-release  Waiting" in s)
    await terminal.tmux("send-keys", "-t", "t", "C-c")
    done = await terminal.until(exited)
    assert "EXIT=130" in done
    assert "Traceback" not in done
