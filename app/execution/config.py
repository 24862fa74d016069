"""Settings of residual execution: the schedule, the legging band, and the (simulated) venues.

Mounted as ``Settings.execution``; nested environment variables use ``__``, e.g.
``RFQDESK_EXECUTION__HORIZON_S=900`` or ``RFQDESK_EXECUTION__VENUES='[{"name": "deribit_sim"}]'``.

Units: quantities in contracts (1 contract = 1 coin of underlying), prices in coin per contract,
times in seconds. The schedule's Almgren–Chriss parameters are derived from these per package
unit (see :func:`app.execution.planning.package_model`).
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, Field, model_validator


class VenueSettings(BaseModel):
    """One lit venue: its book (simulated) and its trading terms (simulated and real).

    The simulated book is linear: ``depth_contracts`` visible per side, spread over
    ``book_width_coin`` beyond the touch, so walking ``q`` contracts moves the price by
    ``q·book_width_coin/depth_contracts`` (the temporary impact slope). What a trade takes
    refills with time constant ``resilience_s``.
    """

    name: str = Field(pattern=r"^[a-z0-9_]{1,16}$")
    enabled: bool = True
    half_spread_coin: float = Field(0.0005, ge=0)
    fee_coin_per_contract: float = Field(0.0003, ge=0)
    depth_contracts: float = Field(60.0, gt=0)
    book_width_coin: float = Field(0.003, gt=0)
    resilience_s: float = Field(5.0, gt=0)
    latency_ms: float = Field(20.0, ge=0)
    min_size: Decimal = Field(Decimal("0.1"), ge=0)
    book_levels: int = Field(10, ge=1, le=100)

    @property
    def impact_slope(self) -> float:
        """Coin per contract by which the price walks per contract taken."""
        return self.book_width_coin / self.depth_contracts


def _default_venues() -> list[VenueSettings]:
    return [
        VenueSettings(name="deribit_sim", depth_contracts=80.0, fee_coin_per_contract=0.0003),
        VenueSettings(
            name="okx_sim", depth_contracts=50.0, fee_coin_per_contract=0.0002, latency_ms=35.0
        ),
        VenueSettings(
            name="bybit_sim",
            depth_contracts=40.0,
            half_spread_coin=0.0006,
            fee_coin_per_contract=0.0003,
            latency_ms=30.0,
        ),
    ]


class ExecutionSettings(BaseModel):
    """How residuals are worked: Almgren–Chriss schedule, legging band, venues."""

    #: when off, plans are still made but the worker sends nothing
    enabled: bool = True
    #: T, how long a residual is worked, and N, the number of slices
    horizon_s: float = Field(600.0, gt=0)
    n_slices: int = Field(10, ge=1, le=500)
    #: λ of the mean–variance criterion E + λV, per coin of shortfall
    risk_aversion_per_coin: float = Field(20.0, ge=0)
    #: α, expected adverse drift per contract (coin/s) while the residual is worked
    #: (e.g. the dealers who took the rest of the block hedging the same way)
    expected_drift_coin_per_s: float = 0.0
    #: γ, permanent impact: coin per contract moved per contract traded (all venues)
    permanent_impact_coin_per_contract: float = Field(2e-6, ge=0)
    #: the delta of what is done beyond complete package units stays within this band (coins)
    delta_band_coins: dict[str, float] = {"BTC": 25.0, "ETH": 250.0}
    default_delta_band_coins: float = Field(25.0, ge=0)
    #: the venues' quantity step (contracts)
    lot_size: Decimal = Field(Decimal("0.1"), gt=0)
    #: a child order's limit: the price the split expects to reach, plus this slack
    limit_slack_coin: float = Field(0.0005, ge=0)
    #: slices added after the horizon when the venues could not absorb everything
    max_extra_slices: int = Field(5, ge=0)
    #: an order persisted but never seen by its venue is sent only within this time
    resend_within_s: float = Field(10.0, gt=0)
    #: the worker's polling interval
    poll_interval_s: float = Field(0.5, gt=0)
    #: floor of the package's price volatility (coin per unit per √s) in the model
    min_price_vol_coin_per_sqrt_s: float = Field(1e-7, gt=0)
    #: the simulated venues: seed of their price paths, cross-venue propagation of permanent
    #: impact, and whether their latency is slept (off in tests with a virtual clock)
    sim_seed: int = 17
    sim_propagation_ms: float = Field(50.0, ge=0)
    sim_sleep_latency: bool = True
    venues: list[VenueSettings] = Field(default_factory=_default_venues)

    @model_validator(mode="after")
    def _unique_venues(self) -> ExecutionSettings:
        names = [v.name for v in self.venues]
        if len(names) != len(set(names)):
            raise ValueError("venue names must be unique")
        return self

    def band_for(self, underlying: str) -> float:
        """The legging delta band (coins) of an underlying."""
        return self.delta_band_coins.get(underlying.upper(), self.default_delta_band_coins)

    @property
    def enabled_venues(self) -> list[VenueSettings]:
        return [v for v in self.venues if v.enabled]
