"""The dealer registry: who the desk may ask, and where."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.dealers.schemas import DealerCreate, DealerUpdate
from app.errors import Conflict, NotFound
from app.models import Dealer


class DealerRegistry:
    async def create(self, session: AsyncSession, body: DealerCreate) -> Dealer:
        if await session.scalar(select(Dealer.id).where(Dealer.name == body.name)) is not None:
            raise Conflict(f"a dealer named {body.name!r} exists", field="name")
        dealer = Dealer(
            name=body.name,
            endpoint_url=str(body.endpoint_url),
            underlyings=body.underlyings,
            enabled=body.enabled,
            webhook_secret=body.webhook_secret.get_secret_value(),
        )
        session.add(dealer)
        try:
            await session.flush()
        except IntegrityError as exc:  # lost a race on the unique name
            raise Conflict(f"a dealer named {body.name!r} exists", field="name") from exc
        return dealer

    async def get(self, session: AsyncSession, dealer_id: uuid.UUID) -> Dealer:
        dealer = await session.get(Dealer, dealer_id)
        if dealer is None:
            raise NotFound(f"no dealer {dealer_id}", field="dealer_id")
        return dealer

    async def list(
        self, session: AsyncSession, underlying: str | None = None, enabled: bool | None = None
    ) -> Sequence[Dealer]:
        stmt = select(Dealer).order_by(Dealer.name)
        if enabled is not None:
            stmt = stmt.where(Dealer.enabled.is_(enabled))
        dealers = (await session.scalars(stmt)).all()
        if underlying is not None:
            dealers = [d for d in dealers if underlying.upper() in d.underlyings]
        return dealers

    async def update(
        self, session: AsyncSession, dealer_id: uuid.UUID, body: DealerUpdate
    ) -> Dealer:
        dealer = await self.get(session, dealer_id)
        if body.endpoint_url is not None:
            dealer.endpoint_url = str(body.endpoint_url)
        if body.underlyings is not None:
            dealer.underlyings = body.underlyings
        if body.enabled is not None:
            dealer.enabled = body.enabled
        if body.webhook_secret is not None:
            dealer.webhook_secret = body.webhook_secret.get_secret_value()
        await session.flush()
        return dealer


registry = DealerRegistry()
