"""``GET /v1/models``: the model versions recorded in ``model_version`` (promoted ones and
retraining candidates, with their metrics and shadow scores)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select

from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import SessionDep, require
from app.errors import COMMON_ERRORS
from app.models import ModelVersion

router = APIRouter(prefix="/v1/models", tags=["models"], responses=COMMON_ERRORS)
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]


class ModelVersionOut(BaseModel):
    name: str
    version: str
    active: bool
    promoted_at: datetime | None
    created_at: datetime
    metrics: dict[str, Any]


class ModelVersionList(BaseModel):
    items: list[ModelVersionOut]


@router.get("", response_model=ModelVersionList, summary="Model versions and their metrics")
async def list_models(
    session: SessionDep,
    _: Analyst,
    name: Annotated[str | None, Query(description="Only this model (fill, hit, intent)")] = None,
    active: Annotated[bool | None, Query(description="Only active (true) or inactive")] = None,
) -> ModelVersionList:
    """Every recorded version, newest first: whether it serves, when it was promoted, and
    its metrics (the trainer's test-block scores and, for retrained candidates, ``shadow``:
    the window and the candidate's and incumbent's scores on it, and the decision)."""
    q = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.created_at.desc())
    if name is not None:
        q = q.where(ModelVersion.name == name)
    if active is not None:
        q = q.where(ModelVersion.active.is_(active))
    rows = (await session.scalars(q)).all()
    return ModelVersionList(
        items=[
            ModelVersionOut(
                name=r.name,
                version=r.version,
                active=r.active,
                promoted_at=r.promoted_at,
                created_at=r.created_at,
                metrics=r.metrics or {},
            )
            for r in rows
        ]
    )
