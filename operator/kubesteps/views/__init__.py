"""The shared core of the CLI (``kubectl kubesteps``) and the web UI: a read model of a
Pipeline (a typed step tree with phases, attempts, durations, messages and outputs; the run
header; history), its graph (Mermaid, DOT), the verbs that steer it (async functions over
a ``KubeClient``, returning a ``VerbResult`` or raising a typed error that names the
state), and the reads they need (Pipelines, watches, Events, Pod logs).

Nothing here prints: renderers (``kubesteps.cli_views``, the web UI) sit on top.
"""

from kubesteps.views.api import (
    EventRow,
    get_pipeline,
    list_pipelines,
    pipeline_events,
    pod_log,
    step_pods,
    watch_pipeline,
)
from kubesteps.views.graph import Graph, GraphEdge, GraphNode, dot, graph_of, mermaid
from kubesteps.views.verbs import (
    VERB_NAMES,
    VerbResult,
    approve,
    cancel,
    effect_visible,
    reject,
    rerun,
    resume,
    retry,
    suspend,
    wait_for,
)
from kubesteps.views.view_errors import (
    ApiFailed,
    Forbidden,
    NotApplicable,
    PipelineNotFound,
    StepNotFound,
    Unreachable,
    VerbIgnored,
    ViewError,
    WaitTimedOut,
)
from kubesteps.views.view_model import HistoryRow, PipelineView, StepNode, pipeline_view

__all__ = [
    "VERB_NAMES",
    "ApiFailed",
    "EventRow",
    "Forbidden",
    "Graph",
    "GraphEdge",
    "GraphNode",
    "HistoryRow",
    "NotApplicable",
    "PipelineNotFound",
    "PipelineView",
    "StepNode",
    "StepNotFound",
    "Unreachable",
    "VerbIgnored",
    "VerbResult",
    "ViewError",
    "WaitTimedOut",
    "approve",
    "cancel",
    "dot",
    "effect_visible",
    "get_pipeline",
    "graph_of",
    "list_pipelines",
    "mermaid",
    "pipeline_events",
    "pipeline_view",
    "pod_log",
    "reject",
    "rerun",
    "resume",
    "retry",
    "step_pods",
    "suspend",
    "wait_for",
    "watch_pipeline",
]
