"""Every malformed Pipeline in the table is refused, at the right field, for the right reason."""

from __future__ import annotations

import pytest

from kubesteps.plan.validate import validate

from .crd_schema import schema_errors
from .malformed import MALFORMED, Malformed, pipeline


def test_the_table_is_large_enough_to_mean_something() -> None:
    assert len(MALFORMED) >= 30
    assert len({case.id for case in MALFORMED}) == len(MALFORMED)


def test_the_base_manifest_of_the_table_is_valid() -> None:
    assert not isinstance(validate(pipeline()), list)
    assert schema_errors(pipeline()) == []


@pytest.mark.parametrize("case", MALFORMED, ids=lambda case: case.id)
def test_validate_refuses_with_the_field_and_reason(case: Malformed) -> None:
    result = validate(case.manifest)

    assert isinstance(result, list), "validate() accepted a malformed Pipeline"
    found = [(error.path, error.message) for error in result]
    assert any(
        path == case.validate.path and case.validate.message in message for path, message in found
    ), f"expected {case.validate} among {found}"


@pytest.mark.parametrize(
    "case", [case for case in MALFORMED if case.schema is not None], ids=lambda case: case.id
)
def test_the_crd_schema_refuses_with_the_field_and_reason(case: Malformed) -> None:
    assert case.schema is not None
    found = schema_errors(case.manifest)

    assert any(
        path == case.schema.path and case.schema.message in message for path, message in found
    ), f"expected {case.schema} among {found}"


def _reaches_the_crd_schema(case: Malformed) -> bool:
    # apiVersion, kind and metadata.name are the API server's business before any schema.
    return case.validate.path not in ("apiVersion", "kind", "metadata.name")


@pytest.mark.parametrize(
    "case",
    [case for case in MALFORMED if case.schema is None and _reaches_the_crd_schema(case)],
    ids=lambda case: case.id,
)
def test_what_only_the_operator_can_tell_passes_the_crd_schema(case: Malformed) -> None:
    # The table promises the end-to-end test that these reach the operator (no 422).
    assert schema_errors(case.manifest) == []
