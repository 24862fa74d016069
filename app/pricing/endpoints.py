"""The desk's risk, per factor and per underlying, against its limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import SessionDep, StateDep, require
from app.errors import COMMON_ERRORS
from app.pricing.desk import DeskRiskRepository

router = APIRouter(prefix="/v1/desk", tags=["desk"], responses=COMMON_ERRORS)
Reader = Annotated[Principal, Depends(require(Role.SALES, Role.ANALYST))]


class UnderlyingRisk(BaseModel):
    delta_coins: float
    vega_usd_per_vol_point: float
    delta_limit_coins: float | None
    vega_limit_usd: float | None
    delta_utilisation: float | None
    vega_utilisation: float | None


class DeskRisk(BaseModel):
    factors: dict[str, float]
    underlyings: dict[str, UnderlyingRisk]


@router.get("/risk")
async def get_desk_risk(session: SessionDep, state: StateDep, _: Reader) -> DeskRisk:
    """The desk's inventory per risk factor (delta in coins, vega in USD per vol point)."""
    factors = await DeskRiskRepository(session).inventory()
    settings = state.settings.pricing
    out: dict[str, UnderlyingRisk] = {}
    for u in sorted(set(state.settings.rfq.underlyings) | {f.split(":")[0] for f in factors}):
        delta = sum(v for k, v in factors.items() if k == f"{u}:delta")
        vega = sum(v for k, v in factors.items() if k.startswith(f"{u}:vega:"))
        dl, vl = settings.max_abs_delta_coins.get(u), settings.max_abs_vega_usd.get(u)
        out[u] = UnderlyingRisk(
            delta_coins=delta,
            vega_usd_per_vol_point=vega,
            delta_limit_coins=dl,
            vega_limit_usd=vl,
            delta_utilisation=abs(delta) / dl if dl else None,
            vega_utilisation=abs(vega) / vl if vl else None,
        )
    return DeskRisk(factors=factors, underlyings=out)
