"""Simulated venues: idempotent orders, linear books, impact that recovers, permanent impact."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.execution.config import ExecutionSettings, VenueSettings
from app.execution.split import liquidity_from_levels
from app.execution.venues import (
    FeedReference,
    InstrumentReference,
    OrderRequest,
    SimulatedMarket,
    SimulatedVenue,
    StaticReference,
    Venue,
    build_simulated_venues,
)
from app.marketdata.simulated import SimulatedFeed
from tests.execution.sim import CALL, VirtualClock

CFG = VenueSettings(
    name="v1",
    half_spread_coin=0.0005,
    fee_coin_per_contract=0.0003,
    depth_contracts=50.0,
    book_width_coin=0.005,
    resilience_s=5.0,
    latency_ms=0.0,
)


def venue(
    clock: VirtualClock, *, sigma: float = 0.0, gamma: float = 0.0, cfg: VenueSettings = CFG
) -> SimulatedVenue:
    market = SimulatedMarket(
        StaticReference({CALL: InstrumentReference(0.05, sigma)}),
        seed=3,
        permanent_impact=gamma,
        propagation_s=0.05,
    )
    return SimulatedVenue(cfg, market, clock)


def buy(cid: str, qty: str, limit: str | None = None) -> OrderRequest:
    return OrderRequest(cid, CALL, "buy", Decimal(qty), Decimal(limit) if limit else None)


class TestOrders:
    async def test_a_client_order_id_trades_once(self) -> None:
        v = venue(VirtualClock())
        first = await v.place(buy("p:1:0:v1", "10"))
        again = await v.place(buy("p:1:0:v1", "10"))
        assert again == first
        assert first.state == "filled"
        assert v.place_calls["p:1:0:v1"] == 2
        assert v.executions["p:1:0:v1"] == 1
        assert await v.order("p:1:0:v1") == first
        assert await v.fills("p:1:0:v1") == first.fills
        assert await v.order("unknown") is None

    async def test_walks_a_linear_book(self) -> None:
        v = venue(VirtualClock())
        o = await v.place(buy("a", "10"))
        # touch 0.0505, slope 0.005/50 = 1e-4 per contract: average 0.0505 + 1e-4·5
        assert float(o.avg_price or 0) == pytest.approx(0.0505 + 5e-4)
        assert o.fills[0].fee == Decimal("0.0030000000")

    async def test_depth_limits_an_ioc_order(self) -> None:
        v = venue(VirtualClock())
        o = await v.place(buy("a", "80"))
        assert (o.state, o.filled_quantity) == ("partially_filled", Decimal("50.0"))
        nothing = await v.place(buy("b", "1"))
        assert (nothing.state, nothing.filled_quantity) == ("cancelled", Decimal(0))

    async def test_limit_price(self) -> None:
        v = venue(VirtualClock())
        # the marginal price reaches 0.0505 + 1e-4·q: the limit 0.0515 allows 10 contracts
        o = await v.place(buy("a", "30", limit="0.0515"))
        assert o.filled_quantity == Decimal("10.0")

    async def test_rejects_below_the_minimum_and_unknown_instruments(self) -> None:
        v = venue(VirtualClock(), cfg=CFG.model_copy(update={"min_size": Decimal(1)}))
        assert (await v.place(buy("a", "0.5"))).state == "rejected"
        unknown = OrderRequest("b", "ETH-1JAN27-1-C", "buy", Decimal(1))
        assert (await v.place(unknown)).state == "rejected"

    async def test_sells_hit_the_bids(self) -> None:
        v = venue(VirtualClock())
        o = await v.place(OrderRequest("s", CALL, "sell", Decimal(10)))
        assert float(o.avg_price or 0) == pytest.approx(0.0495 - 5e-4)

    def test_is_a_venue(self) -> None:
        assert isinstance(venue(VirtualClock()), Venue)


class TestImpact:
    async def test_temporary_impact_recovers_with_resilience(self) -> None:
        clock = VirtualClock()
        v = venue(clock)
        await v.place(buy("a", "20"))
        book = await v.book(CALL)
        liq = liquidity_from_levels("v1", "buy", book.side_levels("buy"))
        assert liq.marginal_cost == pytest.approx(0.0505 + 20 * 1e-4)  # 20 taken
        assert liq.depth == pytest.approx(30.0)
        clock.advance(5.0)  # one resilience time: e^{-1} of it is left
        liq = liquidity_from_levels("v1", "buy", (await v.book(CALL)).side_levels("buy"))
        assert liq.marginal_cost == pytest.approx(0.0505 + 20 * 1e-4 * 0.36787944, rel=1e-6)
        assert liq.impact == pytest.approx(1e-4)

    async def test_permanent_impact_moves_every_venue_after_propagation(self) -> None:
        clock = VirtualClock()
        market = SimulatedMarket(
            StaticReference({CALL: InstrumentReference(0.05, 0.0)}),
            seed=1,
            permanent_impact=1e-5,
            propagation_s=0.05,
        )
        a = SimulatedVenue(CFG, market, clock)
        b = SimulatedVenue(CFG.model_copy(update={"name": "v2"}), market, clock)
        await a.place(buy("a", "10"))
        assert market.mid(CALL, clock()) == pytest.approx(0.05)  # not yet
        clock.advance(0.1)
        assert market.mid(CALL, clock()) == pytest.approx(0.05 + 1e-4)
        bids = (await b.book(CALL)).side_levels("sell")
        assert liquidity_from_levels("v2", "sell", bids).marginal_cost == pytest.approx(
            -(0.05 + 1e-4 - 0.0005)
        )

    async def test_prices_follow_a_seeded_factor(self) -> None:
        def path(seed: int) -> list[float]:
            clock = VirtualClock()
            m = SimulatedMarket(StaticReference({CALL: InstrumentReference(0.05, 1e-4)}), seed=seed)
            out = []
            for _ in range(5):
                out.append(m.mid(CALL, clock()))
                clock.advance(10)
            return out

        assert path(1) == path(1)
        assert path(1) != path(2)
        assert path(1)[0] == 0.05


def test_feed_reference_prices_from_the_simulated_feed() -> None:
    at = datetime(2026, 11, 25, 12, tzinfo=UTC)
    feed = SimulatedFeed(seed=7, clock=lambda: at)
    snap = feed.snapshot_sync("BTC")
    expiry = snap.expiries[3]
    strike = round(float(snap.spot) / 1000) * 1000
    from app.domain.expiries import format_expiry_code

    name = f"BTC-{format_expiry_code(expiry)}-{strike}-C"
    ref = FeedReference(feed).reference(name)
    assert 0 < ref.mid_coin < 0.2
    assert ref.beta_coin_per_sqrt_s > 0  # an ATM call's coin price rises with spot


def test_build_simulated_venues_from_settings() -> None:
    settings = ExecutionSettings(sim_sleep_latency=False)
    market, venues = build_simulated_venues(settings, StaticReference({}), VirtualClock(), seed=5)
    assert [v.info.name for v in venues] == ["deribit_sim", "okx_sim", "bybit_sim"]
    assert market.seed == 5
    with pytest.raises(ValueError, match="unique"):
        ExecutionSettings(venues=[CFG, CFG])
