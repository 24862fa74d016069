"""Generated requests against the real server: no 5xx, and every answer matches the spec."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import hypothesis
import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from app import migrate
from app.auth.keys import Role
from app.auth.service import create_key
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.main import create_app
from tests.servers import serve

SPEC = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"
schema = schemathesis.openapi.from_path(SPEC)


async def _admin_key(settings: Settings) -> str:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as s, s.begin():
        _, key = await create_key(s, role=Role.ADMIN, name="fuzzer", rate_limit_per_minute=10**9)
    await engine.dispose()
    return key


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    migrate.upgrade(url)
    settings = Settings(database_url=url, background_tasks=False, log_level="CRITICAL")
    key = asyncio.run(_admin_key(settings))
    with serve(create_app(settings)) as base_url:
        yield base_url, {"Authorization": f"Bearer {key}"}


@schema.parametrize()
@hypothesis.settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_no_server_error_and_answers_match_the_spec(case: schemathesis.Case, live) -> None:
    base_url, headers = live
    response = case.call(base_url=base_url, headers=headers, timeout=10)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )


@pytest.mark.slow
@schema.parametrize()
@hypothesis.settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_thousands_of_generated_requests(case: schemathesis.Case, live) -> None:
    """The slow suite: about 250 cases per operation (a few thousand in all), random seeds."""
    base_url, headers = live
    response = case.call(base_url=base_url, headers=headers, timeout=10)
    case.validate_response(
        response,
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
