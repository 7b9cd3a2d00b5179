"""Kubeconfig files pointing clients (kubectl, kubernetes-asyncio, kopf) at an emulator."""

from __future__ import annotations

from pathlib import Path

import yaml

# Not a word: the operator redacts its own token from every message it writes.
DUMMY_TOKEN = "kubesteps-emulator-token"


def write_kubeconfig(
    path: str | Path, server: str, *, namespace: str = "default", token: str = DUMMY_TOKEN
) -> Path:
    """Write a kubeconfig whose current context talks to ``server`` with ``token`` (the
    emulator accepts any)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {"token": token}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
            }
        ],
        "current-context": "emulator",
        "preferences": {},
    }
    target = Path(path)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target
