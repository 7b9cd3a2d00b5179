"""SQLiteStateKeeper: step states in a local SQLite database that outlives the process."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from kubesteps.engine.state import StepState, StepStatus

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS step_states (
    scope TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL,
    PRIMARY KEY (scope, name)
);
CREATE TABLE IF NOT EXISTS last_runs (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


class SQLiteStateKeeper:
    """Keeps states in SQLite (WAL mode), under a ``scope`` (one per pipeline or object).

    Several keepers, in one process or several, may share a database file as long as each
    engine uses its own scope. Every write is committed before the call returns, so a
    process restart loses nothing. Database calls run in a worker thread: the event loop
    never waits on the disk.
    """

    def __init__(self, path: str | Path, *, scope: str = "default", timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.scope = scope
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(
            self.path, timeout=timeout, isolation_level=None, check_same_thread=False
        )
        with self._lock:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.executescript(_SCHEMA)

    async def get_step_state(self, name: str) -> StepState | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT state FROM step_states WHERE scope = ? AND name = ?", (self.scope, name)
            ).fetchone()
        )
        return _decode(row[0]) if row else None

    async def set_step_state(self, state: StepState) -> None:
        data = _encode(state)
        await self._run(
            lambda c: c.execute(
                "INSERT INTO step_states (scope, name, state) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, name) DO UPDATE SET state = excluded.state",
                (self.scope, state.name, data),
            )
        )

    async def get_last_run(self, key: str) -> datetime | None:
        row = await self._run(
            lambda c: c.execute(
                "SELECT at FROM last_runs WHERE scope = ? AND key = ?", (self.scope, key)
            ).fetchone()
        )
        return datetime.fromisoformat(row[0]) if row else None

    async def set_last_run(self, key: str, when: datetime) -> None:
        await self._run(
            lambda c: c.execute(
                "INSERT INTO last_runs (scope, key, at) VALUES (?, ?, ?) "
                "ON CONFLICT (scope, key) DO UPDATE SET at = excluded.at",
                (self.scope, key, when.isoformat()),
            )
        )

    async def flush(self) -> None:
        return None  # every write is already committed

    async def states(self) -> dict[str, StepState]:
        """Every state kept under this scope, by name."""
        rows = await self._run(
            lambda c: c.execute(
                "SELECT name, state FROM step_states WHERE scope = ? ORDER BY rowid", (self.scope,)
            ).fetchall()
        )
        return {name: _decode(data) for name, data in rows}

    async def clear(self) -> None:
        """Forget everything kept under this scope (a fresh start)."""

        def clear(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM step_states WHERE scope = ?", (self.scope,))
            c.execute("DELETE FROM last_runs WHERE scope = ?", (self.scope,))

        await self._run(clear)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def locked() -> T:
            with self._lock:
                return fn(self._conn)

        return await asyncio.to_thread(locked)


def _encode(state: StepState) -> str:
    def stamp(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return json.dumps(
        {
            "name": state.name,
            "status": state.status.value,
            "reason": state.reason,
            "message": state.message,
            "attempts": state.attempts,
            "started_at": stamp(state.started_at),
            "finished_at": stamp(state.finished_at),
            "next_run_at": stamp(state.next_run_at),
            "outputs": dict(state.outputs) if state.outputs is not None else None,
            "disabled": state.disabled,
            "inserted": list(state.inserted),
            "attempt_started_at": stamp(state.attempt_started_at),
        },
        default=str,
    )


def _decode(data: str) -> StepState:
    raw: dict[str, Any] = json.loads(data)

    def stamp(key: str) -> datetime | None:
        value = raw.get(key)
        return datetime.fromisoformat(value) if value else None

    return StepState(
        name=raw.get("name", ""),
        status=StepStatus(raw["status"]),
        reason=raw.get("reason", ""),
        message=raw.get("message", ""),
        attempts=int(raw.get("attempts", 0)),
        started_at=stamp("started_at"),
        finished_at=stamp("finished_at"),
        next_run_at=stamp("next_run_at"),
        outputs=raw.get("outputs"),
        disabled=bool(raw.get("disabled", False)),
        inserted=tuple(raw.get("inserted", ())),
        attempt_started_at=stamp("attempt_started_at"),
    )
