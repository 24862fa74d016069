"""The application factory and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import structlog
from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.analytics.endpoints import dashboard_router
from app.analytics.endpoints import router as analytics_router
from app.analytics.jobs import schedule as analytics_schedule
from app.auth.service import KeyResolver
from app.cache import create_cache
from app.config import Settings, get_settings
from app.db import create_engine, create_sessionmaker
from app.dealers.award import DealerFiller
from app.dealers.client import CircuitBreakers, DealerClient
from app.dealers.endpoints import router as dealers_router
from app.dealers.fanout import DealerFanout
from app.dealers.inbound import router as dealer_inbound_router
from app.errors import install_error_handlers
from app.events import EventBus, drain_after_commit, unit_of_work
from app.execution.endpoints import router as executions_router
from app.execution.service import ExecutionWorker
from app.execution.venues import FeedReference, build_simulated_venues
from app.health.endpoints import router as health_router
from app.logging import configure_logging
from app.marketdata.simulated import SimulatedFeed
from app.messages.endpoints import router as messages_router
from app.messages.service import MessageService
from app.metrics import MODEL_VERSION, RFQS_BY_STATE
from app.middleware import BodySizeLimitMiddleware, IdempotencyMiddleware, RequestContextMiddleware
from app.models_api import router as models_router
from app.models_serving import load_intent, load_trading_models, poll_promotions, seed_store
from app.pricing.desk import SESSION_KEY as DESK_SESSION_KEY
from app.pricing.endpoints import router as desk_router
from app.pricing.hit import HitCurve, LogisticHitCurve
from app.pricing.inventory import InventoryView
from app.pricing.service import PricingService
from app.rfq.endpoints import router as rfq_router
from app.rfq.repository import RfqRepository
from app.rfq.service import RfqService
from app.state import AppState
from ml.hit.model import LiveHitCurve
from ml.retrain import retrain_schedule

log = structlog.get_logger(__name__)


def _operation_id(route: APIRoute) -> str:
    return f"{route.tags[0]}-{route.name}" if route.tags else route.name


async def build_state(settings: Settings) -> AppState:
    engine = create_engine(settings)
    state = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=create_sessionmaker(engine),
        cache=create_cache(settings.redis_url),
        keys=KeyResolver(settings.api.key_cache_ttl_s),
        http=httpx.AsyncClient(
            timeout=httpx.Timeout(5.0, connect=1.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        ),
    )
    feed = SimulatedFeed(seed=settings.pricing.sim_seed)
    models = load_trading_models(settings.ml)
    if models is not None:
        await seed_store(models, settings.database_url, settings.ml.store_seed_days)
        state.services["models"] = models
    hit: HitCurve = (
        LiveHitCurve(models.hit)
        if models is not None
        else LogisticHitCurve(settings.pricing.hit_alpha, settings.pricing.hit_beta_per_vol_point)
    )
    inventory = InventoryView(
        state.cache,
        max_age_s=settings.pricing.inventory_memory_s,
        shared=state.cache.backend == "redis" or settings.serve_workers == 1,
    )
    state.sessionmaker.configure(info={DESK_SESSION_KEY: inventory})
    state.services["inventory"] = inventory
    pricing = PricingService(feed, hit, settings.pricing, inventory=inventory)
    state.services["pricing"] = pricing
    client = DealerClient(
        state.http,
        CircuitBreakers(settings.dealers.breaker_failures, settings.dealers.breaker_cooldown_s),
    )
    state.services["rfq"] = RfqService(
        settings.rfq,
        pricing=pricing,
        fanout=DealerFanout(settings.dealers, client, state.cache, models, settings.ml),
        filler=DealerFiller(settings.dealers, client, models),
        dealer_settings=settings.dealers,
        events=EventBus(state.cache),
        execution=settings.execution,
    )
    _, venues = build_simulated_venues(
        settings.execution, FeedReference(feed), clock=lambda: datetime.now(UTC)
    )
    state.services["execution"] = ExecutionWorker(state.sessionmaker, venues, settings.execution)
    parser = load_intent(settings.ml)
    state.services["messages"] = MessageService(state.services["rfq"], parser)
    state.services["model_versions"] = (models.versions() if models else {"hit": hit.version}) | (
        {"intent": parser.version} if parser else {}
    )
    for name, version in state.services["model_versions"].items():
        MODEL_VERSION.labels(name, version).set(1)
    return state


async def _sweep_expired(state: AppState) -> None:
    """Expire RFQs past their deadline, also those left behind by a previous process; refresh
    the RFQs-by-state gauge every few sweeps."""
    service: RfqService = state.services["rfq"]
    sweeps = 0
    while True:
        try:
            async with unit_of_work(state.sessionmaker) as session:  # events after commit
                expired = await service.expire_due(session)
                if sweeps % 10 == 0:
                    for rfq_state, count in (await RfqRepository(session).count_by_state()).items():
                        RFQS_BY_STATE.labels(rfq_state).set(count)
            sweeps += 1
            if expired:
                log.info("rfqs_expired", count=len(expired))
        except Exception:
            log.warning("expiry_sweep_failed", exc_info=True)
        await asyncio.sleep(state.settings.rfq.sweep_interval_s)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level, settings.log_json)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = await build_state(settings)
        app.state.rfqdesk = state
        if settings.env != "test":
            # The models, torch and the libraries are loaded now and live as long as the
            # process: move them out of the collector's generations, so that a full collection
            # walks what requests allocate, not millions of long-lived objects (a pause of
            # ~0.35 s every few thousand RFQs otherwise). Not in tests, which build many apps
            # in one process: frozen garbage is never collected.
            gc.collect()
            gc.freeze()
        tasks = []
        if settings.background_tasks:
            tasks.append(asyncio.create_task(_sweep_expired(state), name="expiry-sweeper"))
            inventory: InventoryView = state.services["inventory"]
            tasks.append(asyncio.create_task(inventory.listen(), name="inventory-listener"))
            worker: ExecutionWorker = state.services["execution"]
            tasks.append(asyncio.create_task(worker.run(), name="execution-worker"))
            tasks.append(
                asyncio.create_task(analytics_schedule(state.sessionmaker), name="analytics-job")
            )
            if settings.ml.retrain_interval_s:
                tasks.append(
                    asyncio.create_task(
                        retrain_schedule(
                            settings, state.sessionmaker, settings.ml.retrain_interval_s
                        ),
                        name="retrainer",
                    )
                )
            if "models" in state.services:
                tasks.append(
                    asyncio.create_task(
                        poll_promotions(
                            state.services["models"],
                            state.sessionmaker,
                            settings.ml.poll_interval_s,
                        ),
                        name="model-poller",
                    )
                )
        log.info(
            "started", database=settings.database_url.split("://")[0], cache=state.cache.backend
        )
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await drain_after_commit()
            fanout = state.services["rfq"].fanout
            if fanout is not None:
                await fanout.close()
            await state.http.aclose()
            await state.cache.close()
            await state.engine.dispose()

    app = FastAPI(
        title="rfqdesk",
        version="1",
        summary="RFQ engine for block crypto option structures",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    install_error_handlers(app)
    app.include_router(health_router)
    app.include_router(rfq_router)
    app.include_router(dealers_router)
    app.include_router(desk_router)
    app.include_router(dealer_inbound_router)
    app.include_router(messages_router)
    app.include_router(executions_router)
    app.include_router(models_router)
    app.include_router(analytics_router)
    app.include_router(dashboard_router)
    # added last = outermost: the size limit runs before idempotency buffers a body
    app.add_middleware(
        IdempotencyMiddleware,
        cache_getter=lambda: app.state.rfqdesk.cache,
        ttl_s=settings.api.idempotency_ttl_s,
    )
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_env() -> FastAPI:
    """Factory used by ``uvicorn --factory`` (each worker builds its own app)."""
    return create_app(get_settings())
