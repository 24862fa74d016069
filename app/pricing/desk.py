"""The desk's inventory per risk factor: read for quoting, moved by fills (atomic increments)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import utcnow
from app.models import DeskRiskFactor
from app.pricing.risk import factor_underlying

#: where a session finds the process's :class:`app.pricing.inventory.InventoryView` (the
#: service's sessionmaker puts it in every session's ``info``)
SESSION_KEY = "inventory_view"
_TABLE = DeskRiskFactor.__table__
_ALL = select(_TABLE.c.factor, _TABLE.c.value)
_OF_UNDERLYING = _ALL.where(_TABLE.c.factor.startswith(bindparam("prefix"), escape="\\"))


class DeskRiskRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def inventory(self, underlying: str | None = None) -> dict[str, float]:
        # Core statements built once, run on the session's connection: read on every quote,
        # where the ORM's per-call statement building and result handling cost ~0.7 ms
        connection = await self.session.connection()
        if underlying is None:
            rows = await connection.execute(_ALL)
        else:
            prefix = underlying.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            rows = await connection.execute(_OF_UNDERLYING, {"prefix": f"{prefix}:"})
        return {f: float(v) for f, v in rows.all()}

    async def add(self, changes: Mapping[str, float]) -> None:
        """Add to each factor in one statement per factor (safe under concurrent fills)."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        now = utcnow()
        moved: set[str] = set()
        for factor, change in sorted(changes.items()):
            if change == 0.0:
                continue
            moved.add(factor_underlying(factor))
            stmt = insert(DeskRiskFactor).values(factor=factor, value=change, updated_at=now)
            stmt = stmt.on_conflict_do_update(
                index_elements=[DeskRiskFactor.factor],
                set_={"value": DeskRiskFactor.value + change, "updated_at": now},
            )
            await self.session.execute(stmt)
        view = self.session.info.get(SESSION_KEY)
        if view is not None:
            view.moved(self.session, moved)
