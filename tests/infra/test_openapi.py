"""The committed OpenAPI document is the app's (run `make openapi` after changing the API)."""

from __future__ import annotations

import json
from pathlib import Path

from app.openapi import render_openapi

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_spec_matches_the_app() -> None:
    assert SPEC.exists(), "openapi/openapi.json is missing: run `make openapi`"
    assert json.loads(SPEC.read_text()) == json.loads(render_openapi()), (
        "openapi/openapi.json drifted from the app: run `make openapi` and commit it"
    )


def test_operation_ids_are_stable_and_unique() -> None:
    spec = json.loads(render_openapi())
    ids = [op["operationId"] for path in spec["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids))
    assert "rfqs-create_rfq" in ids
