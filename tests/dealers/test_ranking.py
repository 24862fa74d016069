"""The fill model ranks the dealers of each RFQ and chooses how many to ask, with reasons."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.keys import Role
from app.models import Dealer
from tests.conftest import KeyMaker
from tests.factories import call_spread


async def test_rfq_lists_the_ranking_with_probabilities_and_reasons(
    client: httpx.AsyncClient, auth: KeyMaker, session: AsyncSession
) -> None:
    for i in range(6):  # unreachable endpoints: connection refused at once
        session.add(
            Dealer(
                name=f"rank-{i}",
                endpoint_url=f"http://127.0.0.1:1/d{i}",
                underlyings=["BTC"],
                webhook_secret="s" * 32,
            )
        )
    await session.commit()
    resp = await client.post(
        "/v1/rfqs", json=call_spread(side="two_way"), headers=await auth(Role.SALES)
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    requests = body["dealer_requests"]
    assert len(requests) == 6  # every dealer considered is logged, asked or not
    asked = [r for r in requests if r["selected"]]
    assert 1 <= len(asked) <= 6
    assert all(0 <= r["p_answer"] <= 1 and 0 <= r["p_win"] <= r["p_answer"] for r in requests)
    assert sorted(r["rank"] for r in requests) == list(range(1, 7))
    assert all(r["outcome"] == "skipped" for r in requests if not r["selected"])
    wins = [r["p_win"] for r in sorted(requests, key=lambda r: r["rank"])]
    assert wins == sorted(wins, reverse=True)  # ranked by predicted fill
    ranking = body["quotes"][0]["explanation"]["dealer_selection"]
    assert ranking["model_version"].startswith("fill/")
    assert ranking["asked"] == len(asked)
    assert all(d["reason"] for d in ranking["dealers"])
