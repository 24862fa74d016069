"""Service settings, read from the environment (prefix ``RFQDESK_``) and an optional ``.env``.

Nested sections use ``__``: ``RFQDESK_PRICING__RISK_AVERSION=1e-6``. Secrets may also be read from
files (``RFQDESK_SECRETS_DIR``, one file per setting name), never from the repository.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.execution.config import ExecutionSettings

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./var/rfqdesk.db"


class RfqSettings(BaseModel):
    """Limits and defaults of RFQ intake."""

    underlyings: list[str] = ["BTC", "ETH"]
    min_block: dict[str, Decimal] = {"BTC": Decimal(25), "ETH": Decimal(250)}
    max_legs: int = 20
    quantity_step: Decimal = Decimal("0.1")
    default_expires_in_ms: int = 30_000
    max_expires_in_ms: int = 600_000
    sweep_interval_s: float = 1.0


class PricingSettings(BaseModel):
    """The client quote: hit-probability curve (until a trained model serves), risk aversion,
    factor covariance and desk risk limits. Markups are in gross-vega vol points: the package's
    markup in USD divided by its gross vega (Σ|legs| vega, USD per 1 vol point)."""

    hit_alpha: float = -0.4
    hit_beta_per_vol_point: float = 2.5
    risk_aversion_per_usd: float = 2e-6
    horizon_days: float = 1.0
    vol_of_vol_points_per_day: float = 2.5
    spot_vol_correlation: float = -0.4
    vega_term_decorrelation_years: float = 0.5
    quote_valid_ms: int = 5_000
    tick_coin: dict[str, Decimal] = {"BTC": Decimal("0.0001"), "ETH": Decimal("0.0001")}
    max_abs_delta_coins: dict[str, float] = {"BTC": 2_000.0, "ETH": 20_000.0}
    max_abs_vega_usd: dict[str, float] = {"BTC": 2_000_000.0, "ETH": 500_000.0}
    sim_seed: int = 7
    #: how long a process may price off the desk inventory it read before, while its
    #: subscription to fill announcements is live (0: read it for every quote); see
    #: app/pricing/inventory.py
    inventory_memory_s: float = Field(default=1.0, ge=0.0)
    #: a hedge reference further than this fraction from spot is refused (422): the delta is
    #: exchanged at that price, so a typo (64.5 for 64500) would hand over the difference
    max_hedge_reference_deviation: float = Field(default=0.2, gt=0.0)


class DealerSettings(BaseModel):
    """Dealer fan-out: deadlines, signing, circuit breaker, quote validation, cover policy."""

    #: how long dealers have to answer a quote request
    deadline_ms: int = 400
    #: most dealers asked per RFQ (the ranking may choose fewer)
    max_dealers: int = 8
    #: "two_way_only" hides the client's side from dealers; "disclosed" shows it
    side_disclosure: Literal["disclosed", "two_way_only"] = "two_way_only"
    #: principal: the desk may show its own price and keep what dealers do not cover;
    #: back_to_back: never show a price no dealer quote covers (plus the margin)
    cover_policy: Literal["principal", "back_to_back"] = "principal"
    back_to_back_margin_coin: Decimal = Decimal("0.0005")
    #: a dealer quote further than this from theo (coin per unit) is refused
    price_band_coin: Decimal = Decimal("0.05")
    signature_skew_s: int = 30
    breaker_failures: int = 3
    breaker_cooldown_s: float = 30.0
    notify_lost_with_cover: bool = True
    request_timeout_s: float = 2.0
    #: how long the list of enabled dealers is reused before it is read again
    dealer_cache_s: float = 2.0


class MlSettings(BaseModel):
    """Which model artifacts serve. Versions are pinned here; None means the newest artifact
    committed under ``artifacts_dir/<name>/`` (the repository pins it)."""

    artifacts_dir: Path = Path(__file__).resolve().parent.parent / "ml" / "artifacts"
    intent_version: str | None = None
    load_intent: bool = True
    torch_threads: int = 1
    #: fill (dealer answer/win) and hit (client) models; None: the committed default versions
    fill_version: str | None = None
    hit_version: str | None = None
    #: serve the trained models (False: the configured logistic hit curve, all dealers asked)
    use_trained: bool = True
    #: how often a process checks the model_version table for a newly promoted version
    poll_interval_s: float = 10.0
    #: days of log replayed at start-up into the trailing dealer/client statistics
    store_seed_days: float = 30.0
    #: retrain fill and hit from the log every this many seconds, promoting only better
    #: models (shadow-scored on the most recent window); None: off
    retrain_interval_s: float | None = None
    #: dealer selection: cost of asking one more dealer (information leakage), bounds
    leak_cost: float = 0.04
    min_dealers: int = 1
    max_dealers: int = 8


class ApiSettings(BaseModel):
    """HTTP-level protections."""

    max_body_bytes: int = 64 * 1024
    rate_limit_per_minute: int = 600
    idempotency_ttl_s: int = 24 * 3600
    key_cache_ttl_s: float = 30.0


class Settings(BaseSettings):
    """All configuration of one rfqdesk process."""

    model_config = SettingsConfigDict(
        env_prefix="RFQDESK_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    env: Literal["dev", "test", "prod"] = "dev"
    database_url: str = DEFAULT_SQLITE_URL
    redis_url: str | None = None
    # Connections a worker keeps open, and how many more it may open for a burst (closed again
    # when returned). Sized for ~32 requests in flight per worker: under load a transaction's
    # connection stays checked out while the event loop serves other requests, and overflow
    # connections opened and closed per burst cost a connect each (bench/RESULTS.md, Load
    # 2026-12-05 afternoon). Keep workers × (size + overflow) under Postgres' max_connections.
    db_pool_size: int = Field(default=32, ge=1)
    db_pool_max_overflow: int = Field(default=8, ge=0)
    db_pool_timeout_s: float = 5.0
    # A round trip before every checkout. Off: a connection broken by a database restart fails
    # its first statement, that request gets 503 + Retry-After and SQLAlchemy drops the whole
    # pool, so the next ones reconnect (tests/faults). On: that one request is spared.
    db_pool_pre_ping: bool = False
    db_echo: bool = False
    # Worker processes serving this app (`rfqdesk serve --workers` sets it for its workers;
    # another launcher running several must set RFQDESK_SERVE_WORKERS): with more than one and
    # no Redis, a fill in one worker cannot reach the others, so no worker keeps the desk
    # inventory in memory (app.pricing.inventory).
    serve_workers: int = Field(default=1, ge=1)
    log_level: str = "INFO"
    log_json: bool = True
    background_tasks: bool = True
    rfq: RfqSettings = Field(default_factory=RfqSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    pricing: PricingSettings = Field(default_factory=PricingSettings)
    dealers: DealerSettings = Field(default_factory=DealerSettings)
    ml: MlSettings = Field(default_factory=MlSettings)
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)
    bootstrap_admin_key: SecretStr | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sqlite_path(self) -> Path | None:
        """File of the embedded database, if that is the one configured."""
        if not self.is_sqlite:
            return None
        path = self.database_url.split("///", 1)[1]
        return None if path in ("", ":memory:") else Path(path)


@lru_cache
def get_settings() -> Settings:
    """Settings of this process, read once from the environment."""
    return Settings()
