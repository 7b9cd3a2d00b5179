"""Kubeconfig files pointing clients (kubectl, kubernetes-asyncio, kopf) at an emulator."""

from __future__ import annotations

from pathlib import Path

import yaml


def write_kubeconfig(path: str | Path, server: str, *, namespace: str = "default") -> Path:
    """Write a kubeconfig whose current context talks to ``server`` with a dummy token."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "emulator", "user": {"token": "emulator"}}],
        "contexts": [{
            "name": "emulator",
            "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
        }],
        "current-context": "emulator",
        "preferences": {},
    }
    target = Path(path)
    target.write_text(yaml.safe_dump(config, sort_keys=False))
    return target
