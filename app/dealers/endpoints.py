"""Dealer registry endpoints (admin writes; sales and analysts read)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.keys import Role
from app.auth.service import Principal
from app.config import Settings
from app.dealers.registry import registry
from app.dealers.schemas import DealerCreate, DealerRead, DealerUpdate
from app.deps import SessionDep, SettingsDep, require
from app.errors import COMMON_ERRORS, Conflict, NotFound, Unprocessable, responses

router = APIRouter(prefix="/v1/dealers", tags=["dealers"], responses=COMMON_ERRORS)
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
Reader = Annotated[Principal, Depends(require(Role.SALES, Role.ANALYST))]


@router.post("", status_code=201, responses=responses(Conflict, Unprocessable))
async def create_dealer(
    body: DealerCreate, session: SessionDep, settings: SettingsDep, _: Admin
) -> DealerRead:
    """Register a dealer (its webhook secret is stored and never returned)."""
    _traded(body.underlyings, settings)
    return DealerRead.model_validate(await registry.create(session, body))


def _traded(underlyings: list[str] | None, settings: Settings) -> None:
    """A dealer is registered only for underlyings the desk trades (422 otherwise)."""
    unknown = sorted(set(underlyings or ()) - set(settings.rfq.underlyings))
    if unknown:
        known = ", ".join(settings.rfq.underlyings)
        raise Unprocessable(
            f"the desk does not trade {', '.join(unknown)}; it trades {known}",
            field="underlyings",
        )


@router.get("", responses=responses())
async def list_dealers(
    session: SessionDep,
    _: Reader,
    underlying: Annotated[str | None, Query(max_length=10)] = None,
    enabled: bool | None = None,
) -> list[DealerRead]:
    """Registered dealers, optionally only those for one underlying or only enabled ones."""
    return [DealerRead.model_validate(d) for d in await registry.list(session, underlying, enabled)]


@router.get("/{dealer_id}", responses=responses(NotFound))
async def get_dealer(dealer_id: uuid.UUID, session: SessionDep, _: Reader) -> DealerRead:
    """One dealer."""
    return DealerRead.model_validate(await registry.get(session, dealer_id))


@router.patch("/{dealer_id}", responses=responses(NotFound, Unprocessable))
async def update_dealer(
    dealer_id: uuid.UUID,
    body: DealerUpdate,
    session: SessionDep,
    settings: SettingsDep,
    _: Admin,
) -> DealerRead:
    """Change a dealer's endpoint, underlyings, secret, or switch it off."""
    _traded(body.underlyings, settings)
    return DealerRead.model_validate(await registry.update(session, dealer_id, body))
