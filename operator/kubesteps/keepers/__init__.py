"""State keepers: where step states live between runs."""

from kubesteps.engine.memory import MemoryStateKeeper
from kubesteps.keepers.sqlite import SQLiteStateKeeper

__all__ = ["MemoryStateKeeper", "SQLiteStateKeeper"]
