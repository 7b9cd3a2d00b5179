"""kubesteps: a steps engine for Kubernetes operators, and the Pipeline operator built on it."""

from __future__ import annotations

__version__ = "0.1.0"
