"""An RFQ cancelled or passed while its dealers are being asked: their answers, arriving after,
are still logged, the requests close, and the dealers who quoted are told it ended.

The real service and two simulated dealers over HTTP on loopback (SQLite); the dealers answer
in the response body after 800 ms, so the RFQ is caught in ``quoting``."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from app import migrate
from app.config import DealerSettings, MlSettings, Settings
from app.dealers.simulated import create_dealers_app, make_dealers
from app.main import create_app
from app.models import DealerQuote, DealerRequest
from tests.e2e.test_dealer_flow import _rows, _setup
from tests.factories import call_spread
from tests.servers import free_port, serve


@pytest.mark.parametrize(
    ("action", "state", "told"), [("cancel", "cancelled", "cancelled"), ("pass", "passed", "lost")]
)
def test_answers_after_the_rfq_ended_are_logged_and_the_dealers_told(
    tmp_path: Path, action: str, state: str, told: str
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'ended.db'}"
    migrate.upgrade(url)
    settings = Settings(
        database_url=url,
        log_level="CRITICAL",
        dealers=DealerSettings(deadline_ms=3000, breaker_failures=100),
        ml=MlSettings(min_dealers=2),  # both are asked
    )
    dealers = make_dealers(2, seed=5, modes=["body", "body"])
    for d in dealers:
        d.p_answer, d.latency_ms, d.max_size = 1.0, 800.0, 1000.0
    dealer_port, desk_port = free_port(), free_port()
    key = asyncio.run(_setup(settings, dealers, f"http://127.0.0.1:{dealer_port}"))
    desk = f"http://127.0.0.1:{desk_port}"
    sales = {"Authorization": f"Bearer {key}"}
    with (
        serve(create_dealers_app(dealers, desk), dealer_port),
        serve(create_app(settings), desk_port),
    ):
        created: dict[str, Any] = {}

        def create() -> None:
            created["response"] = httpx.post(
                f"{desk}/v1/rfqs", json=call_spread(expires_in_ms=60_000), headers=sales, timeout=10
            )

        creating = threading.Thread(target=create)
        creating.start()
        rfq_id = None
        for _ in range(100):  # until the RFQ shows up as quoting
            time.sleep(0.02)
            page = httpx.get(f"{desk}/v1/rfqs?state=quoting", headers=sales).json()
            if page["items"]:
                rfq_id = page["items"][0]["id"]
                break
        assert rfq_id, "the RFQ was never seen quoting"
        ended = httpx.post(f"{desk}/v1/rfqs/{rfq_id}/{action}", headers=sales, timeout=10)
        assert ended.status_code == 200, ended.text
        creating.join(15)
        assert created["response"].status_code == 201
        assert created["response"].json()["state"] == state
        time.sleep(0.3)  # the outcome notices go out after the commit
        requests = _rows(settings, DealerRequest, rfq_id=uuid.UUID(rfq_id))
        quotes = _rows(settings, DealerQuote, rfq_id=uuid.UUID(rfq_id))
        assert sorted(r.outcome for r in requests) == ["lost", "lost"]
        assert sorted(q.status for q in quotes) == ["lost", "lost"]  # both logged
        notices = [
            m["result"] for d in dealers for m in (d.outcomes or []) if m["rfq_id"] == rfq_id
        ]
        assert notices == [told, told]
