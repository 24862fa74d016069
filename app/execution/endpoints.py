"""Residual executions: plans, child orders, fills and implementation shortfall (read only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.auth.keys import Role
from app.auth.service import Principal
from app.deps import SessionDep, require
from app.errors import COMMON_ERRORS, NotFound, responses
from app.execution import service
from app.execution.schemas import ExecutionRead

router = APIRouter(prefix="/v1/executions", tags=["executions"], responses=COMMON_ERRORS)
Reader = Annotated[Principal, Depends(require(Role.SALES, Role.ANALYST))]


@router.get("", responses=responses())
async def list_executions(
    session: SessionDep, _: Reader, rfq_id: Annotated[uuid.UUID, Query()]
) -> list[ExecutionRead]:
    """The execution plans of one RFQ's residual."""
    return [ExecutionRead.of(p) for p in await service.list_plans(session, rfq_id)]


@router.get("/{execution_id}", responses=responses(NotFound))
async def get_execution(execution_id: uuid.UUID, session: SessionDep, _: Reader) -> ExecutionRead:
    """One plan: schedule, child orders, fills, and the shortfall against the arrival price."""
    return ExecutionRead.of(await service.get_plan(session, execution_id))
