"""Log lines carry the current trace, kopf's object reference and any extra fields."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from opentelemetry.sdk.trace import TracerProvider

from kubesteps.telemetry.logs import configure_logging


@pytest.fixture(autouse=True)
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    # Code run earlier in the process may have quieted kopf (the demo does): these tests
    # need kopf's records to reach the root handler.
    kopf_logger = logging.getLogger("kopf")
    kopf_level = kopf_logger.level
    kopf_logger.setLevel(logging.NOTSET)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    kopf_logger.setLevel(kopf_level)


def _json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_json_lines_carry_the_trace_and_span_of_the_current_span(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", logging.INFO)
    tracer = TracerProvider().get_tracer("kubesteps.test")

    with tracer.start_as_current_span("reconcile") as span:
        logging.getLogger("kubesteps.controller").info("pass %d started", 3)
    logging.getLogger("kubesteps.controller").warning("outside")

    inside, outside = _json_lines(capsys.readouterr().err)
    context = span.get_span_context()
    assert inside["message"] == "pass 3 started"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "kubesteps.controller"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["time"].endswith("+00:00")
    assert (outside["message"], outside["trace_id"], outside["span_id"]) == ("outside", "", "")


def test_json_lines_show_kopfs_object_reference_and_extras_but_not_its_internals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("json", logging.INFO)
    body = kopf.Body(
        {
            "apiVersion": "kubesteps.dev/v1alpha1",
            "kind": "Pipeline",
            "metadata": {"namespace": "ops", "name": "nightly", "uid": "u-1"},
        }
    )
    logger = kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())

    logger.info("step done", extra={"step": "build", "attempt": 2, "when": object()})

    (line,) = _json_lines(capsys.readouterr().err)
    assert line["object"] == {
        "apiVersion": "kubesteps.dev/v1alpha1",
        "kind": "Pipeline",
        "namespace": "ops",
        "name": "nightly",
        "uid": "u-1",
    }
    assert (line["step"], line["attempt"]) == ("build", 2)
    assert line["when"].startswith("<object object at")
    assert not {"settings", "k8s_skip", "k8s_ref"} & set(line)


def test_json_lines_include_the_exception_text(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("json", logging.INFO)
    try:
        raise RuntimeError("status patch refused")
    except RuntimeError:
        logging.getLogger("kubesteps").exception("pass failed")

    (line,) = _json_lines(capsys.readouterr().err)
    assert line["level"] == "ERROR"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("RuntimeError: status patch refused")


def test_text_lines_prefix_the_object_and_end_with_the_trace_inside_a_span(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("text", logging.INFO)
    body = kopf.Body({"metadata": {"namespace": "ops", "name": "nightly"}})
    logger = kopf.ObjectLogger(body=body, settings=kopf.OperatorSettings())
    tracer = TracerProvider().get_tracer("kubesteps.test")

    with tracer.start_as_current_span("reconcile") as span:
        logger.info("waiting")
    logger.info("idle")

    inside, outside = capsys.readouterr().err.splitlines()
    context = span.get_span_context()
    assert inside.endswith(
        "INFO     kopf.objects: [ops/nightly] waiting "
        f"trace_id={context.trace_id:032x} span_id={context.span_id:016x}"
    )
    assert outside.endswith("INFO     kopf.objects: [ops/nightly] idle")


def test_configuring_again_replaces_only_its_own_handler_and_sets_the_level() -> None:
    root = logging.getLogger()
    other = logging.NullHandler()
    root.addHandler(other)

    first = configure_logging("text", "DEBUG")
    second = configure_logging("json", "WARNING")

    assert first not in root.handlers
    assert second in root.handlers
    assert other in root.handlers
    assert root.level == logging.WARNING


def test_an_unknown_log_format_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"^log format 'yaml' is not supported; use text or json$"):
        configure_logging("yaml", logging.INFO)  # type: ignore[arg-type]
