"""Test kubesteps pipelines and operators without a cluster: a Kubernetes API emulator, a
kopf runner, and pytest fixtures (``pytest_plugins = ["kubesteps.testing.pytest_plugin"]``).
"""

from kubesteps.testing.discovery import ResourceInfo
from kubesteps.testing.emulator import Emulator
from kubesteps.testing.kubeconfig import write_kubeconfig
from kubesteps.testing.operator_runner import OperatorRun, run_operator
from kubesteps.testing.routing import Fault, RequestCounter
from kubesteps.testing.standalone import serve
from kubesteps.testing.status_errors import ApiError, Cause

__all__ = [
    "ApiError",
    "Cause",
    "Emulator",
    "Fault",
    "OperatorRun",
    "RequestCounter",
    "ResourceInfo",
    "run_operator",
    "serve",
    "write_kubeconfig",
]
