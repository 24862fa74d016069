"""Staged inserts: new rows written in one statement at the end of a unit of work, and grouped
across concurrent units of work (group commit) when they are all a unit writes.

The create-and-quote path builds an RFQ, its legs, its state events, the market snapshot it was
priced on and the client quote; the ORM's unit of work spent more on its per-object bookkeeping
than the database on the rows. Here:

- :func:`fresh` builds such objects without an attribute event per value;
- :func:`stage` queues them on the session, and :func:`write_staged` writes them when the unit
  of work ends: on Postgres in one statement (every table's INSERT taking its rows as one
  array per column, :func:`_unnest_insert`), elsewhere one multi-row INSERT per table;
- a unit of work whose only statement is that write is handed to the engine's
  :class:`_GroupWriter`, which writes the units that arrive together in one autocommit
  statement.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import functools
import re
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

from sqlalchemy import Table, event, insert, inspect
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction, configure_mappers

from app.db import Base, is_outage
from app.metrics import GROUP_COMMIT_UNITS

_M = TypeVar("_M", bound=Base)
_STAGED = "staged_inserts"
_TOUCHED = "transaction_touched_database"


@event.listens_for(Session, "after_begin")
def _touched(session: Session, _transaction: SessionTransaction, _connection: Any) -> None:
    """A session's transaction has taken a connection (and begun on the database)."""
    session.info[_TOUCHED] = True


@functools.cache
def _configured() -> bool:
    configure_mappers()  # relationships resolved before the first object is built
    return True


def fresh(cls: type[_M], /, **values: Any) -> _M:
    """A new object of a mapped class with ``values`` set as the ORM sets a loaded row's: in
    the instance's dict, without an attribute event per value (what ``cls(**values)`` costs,
    ~2 µs a value; the create path builds about 60 per RFQ).

    Only for objects written through :func:`stage`, never added to a session: relationship
    values are kept as given (a plain list stays a plain list, without backrefs), which the
    ORM's flush would not accept. Later assignments are ordinary instrumented ones."""
    _configured()
    obj = inspect(cls).class_manager.new_instance()
    obj.__dict__.update(values)
    return cast(_M, obj)


def stage(session: AsyncSession, *rows: Base) -> None:
    """Queue new rows for :func:`write_staged` instead of the ORM unit of work.

    Staged objects stay transient: the caller keeps using them as plain values. Only rows that
    nothing flushed by the ORM in the same transaction refers to may be staged (they are
    written last, just before the commit)."""
    session.info.setdefault(_STAGED, []).extend(rows)


async def write_staged(session: AsyncSession, *, last: bool = False) -> None:
    """Write the staged rows, parents before children (the metadata's dependency order).

    ``last``: nothing else runs in the transaction after this but its commit. Then, on
    Postgres, when the transaction has not touched the database yet and the ORM has nothing
    to flush, the write (one statement, atomic by itself) runs in autocommit, grouped with the
    other units of work written at the same time (:class:`_GroupWriter`): no BEGIN and
    COMMIT round trips, and no pooled connection held per request (under load, each round trip
    of a transaction waits behind other requests' work while holding its connection)."""
    staged: list[Base] = session.info.pop(_STAGED, [])
    if not staged:
        return
    by_table: dict[Any, list[dict[str, Any]]] = {}
    for obj in staged:
        by_table.setdefault(obj.__table__, []).append(_row_of(obj))
    ordered = [(t, by_table.pop(t)) for t in _table_order() if t in by_table]
    if by_table:  # pragma: no cover - every model's table is in the metadata
        raise RuntimeError(f"staged rows for unknown tables: {list(by_table)}")
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql" and len(ordered) > 1:
        # the values are converted here, in the caller: a value its column refuses fails
        # this unit of work alone, not a batch
        unit = _Unit.of(ordered, bind.dialect)
        if last and isinstance(bind, AsyncEngine) and _untouched(session):
            await _group_writer(bind).write(unit)
            return
        connection = await session.connection()
        await connection.exec_driver_sql(*unit.statement(bind.dialect))
        return
    for table, rows in ordered:
        await session.execute(insert(table), rows)


def _untouched(session: AsyncSession) -> bool:
    return not (session.info.get(_TOUCHED) or session.new or session.dirty or session.deleted)


class _Unit:
    """One unit of work's rows as the statement takes them: per table (in dependency order),
    one list of converted values per column."""

    __slots__ = ("arrays", "done", "tables")

    def __init__(self, tables: tuple[str, ...], arrays: list[list[list[Any]]]) -> None:
        self.tables = tables
        self.arrays = arrays
        self.done: asyncio.Future[None] | None = None

    @classmethod
    def of(cls, ordered: list[tuple[Table, list[dict[str, Any]]]], dialect: Dialect) -> _Unit:
        tables = tuple(t.name for t, _ in ordered)
        _, columns = _unnest_insert(tables, dialect)
        arrays = []
        for (_, rows), table_columns in zip(ordered, columns, strict=True):
            per_column = []
            for key, process in table_columns:
                if process is None:
                    per_column.append([row[key] for row in rows])
                else:
                    per_column.append(
                        [None if (v := row[key]) is None else process(v) for row in rows]
                    )
            arrays.append(per_column)
        return cls(tables, arrays)

    @classmethod
    def merged(cls, units: list[_Unit]) -> _Unit:
        """The rows of several units in one: each table's arrays end to end."""
        if len(units) == 1:
            return units[0]
        present = {name for unit in units for name in unit.tables}
        tables = tuple(t.name for t in _table_order() if t.name in present)
        arrays: list[list[list[Any]]] = []
        for name in tables:
            mine = [unit.arrays[unit.tables.index(name)] for unit in units if name in unit.tables]
            arrays.append([[v for part in mine for v in part[j]] for j in range(len(mine[0]))])
        return cls(tables, arrays)

    def statement(self, dialect: Dialect) -> tuple[str, tuple[list[Any], ...]]:
        sql, _ = _unnest_insert(self.tables, dialect)
        return sql, tuple(column for table in self.arrays for column in table)


#: units of work per group-commit statement at most (latency of one batch, memory)
_MAX_BATCH_UNITS = 256


class _GroupWriter:
    """Group commit of self-contained units of work (one engine, one event loop).

    A unit whose only statement is its staged write is queued here instead of taking a
    connection of its own. While a batch is being written, the units that arrive queue up;
    the next batch writes them all in one statement, in autocommit, on one connection: under
    load, one round trip, one parse and one WAL flush for many RFQs; idle, a unit is written at
    once (no timer).

    A batch is atomic: each of its units is either wholly stored or not at all, and no caller
    hears of success before its batch has committed. Should a batch fail other than by an
    outage (a row that a constraint refuses, say), its units are written again one by one, so
    that only the faulty one fails; an outage fails them all (503 and Retry-After). A unit
    whose caller was cancelled while it waited is not written; one cancelled while its batch
    is being written may still be stored, as a statement cancelled in flight may be."""

    def __init__(self, engine: AsyncEngine) -> None:
        # weak: the writers are kept per engine, and must not keep a dropped engine alive
        self.engine = weakref.ref(engine)
        self.loop = asyncio.get_running_loop()
        self.queue: list[_Unit] = []
        self.writing: list[_Unit] = []  # the batch in flight
        self.draining = False
        self.task: asyncio.Task[None] | None = None  # the current drain

    async def write(self, unit: _Unit) -> None:
        unit.done = self.loop.create_future()
        self.queue.append(unit)
        if not self.draining:
            self.draining = True
            # its own context: the first caller's context variables (its request id) must
            # not follow the writes of the others
            task = self.loop.create_task(self._drain(), context=contextvars.Context())
            _DRAINS.add(task)
            task.add_done_callback(self._drained)
            self.task = task
        await unit.done

    async def _drain(self) -> None:
        try:
            while self.queue:
                live = [u for u in self.queue if u.done is not None and not u.done.done()]
                self.writing, self.queue = live[:_MAX_BATCH_UNITS], live[_MAX_BATCH_UNITS:]
                if self.writing:
                    await self._write_batch(self.writing)
                self.writing = []
        except BaseException:  # cancelled (shutdown): nobody may wait forever
            self._abandon()
            raise
        finally:
            # at once, with the queue empty: a write arriving next starts a new drain
            self.draining = False

    def _abandon(self) -> None:
        for unit in (*self.writing, *self.queue):
            if unit.done is not None and not unit.done.done():
                unit.done.cancel()
        self.writing, self.queue = [], []

    def _drained(self, task: asyncio.Task[None]) -> None:
        """A drain cancelled before it started (its body never ran) leaves nobody waiting
        either, and the next write starts a new one."""
        _DRAINS.discard(task)
        if task is self.task and task.cancelled() and self.draining:
            self.draining = False
            self._abandon()

    async def _write_batch(self, batch: list[_Unit]) -> None:
        GROUP_COMMIT_UNITS.observe(len(batch))
        try:
            await self._execute(_Unit.merged(batch))
        except Exception as exc:
            if len(batch) == 1 or _is_outage(exc):
                for unit in batch:
                    _settle(unit, exc)
                return
            for unit in batch:  # find the faulty unit: each alone
                if unit.done is None or unit.done.done():  # its caller was cancelled
                    continue
                try:
                    await self._execute(unit)
                except Exception as alone:
                    _settle(unit, alone)
                else:
                    _settle(unit, None)
            return
        for unit in batch:
            _settle(unit, None)

    async def _execute(self, unit: _Unit) -> None:
        engine = self.engine()
        if engine is None:  # pragma: no cover - its callers hold their session's engine
            raise RuntimeError("the engine of a queued write is gone")
        async with engine.connect() as alone:
            auto = await alone.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql(*unit.statement(engine.dialect))


_DRAINS: set[asyncio.Task[None]] = set()
_WRITERS: weakref.WeakKeyDictionary[Engine, _GroupWriter] = weakref.WeakKeyDictionary()


def _group_writer(engine: AsyncEngine) -> _GroupWriter:
    writer = _WRITERS.get(engine.sync_engine)
    if (
        writer is None
        or writer.loop is not asyncio.get_running_loop()
        or writer.engine() is not engine
    ):
        writer = _WRITERS[engine.sync_engine] = _GroupWriter(engine)
    return writer


def _is_outage(exc: BaseException) -> bool:
    if isinstance(exc, DBAPIError):
        return is_outage(exc)
    return isinstance(exc, OSError | TimeoutError | PoolTimeout)


def _settle(unit: _Unit, exc: BaseException | None) -> None:
    done = unit.done
    if done is None or done.done():  # its caller was cancelled while it was being written
        return
    if exc is None:
        done.set_result(None)
    elif isinstance(exc, asyncio.CancelledError):
        done.cancel()
    else:
        done.set_exception(_own(exc))


def _own(exc: BaseException) -> BaseException:
    """A copy of a batch's error for one of its callers, caused by the original: callers do
    not share one exception object (its traceback, its context)."""
    try:
        mine = copy.copy(exc)
    except Exception:  # pragma: no cover - an exception that cannot be copied
        return exc
    if type(mine) is not type(exc):  # pragma: no cover
        return exc
    mine.__cause__ = exc
    return mine


@functools.cache
def _table_order() -> list[Table]:
    """The metadata's dependency order (sorted once, not per write)."""
    return list(Base.metadata.sorted_tables)


# a column of an unnest INSERT: (column key, bind processor of the column's type)
_Column = tuple[str, Callable[[Any], Any] | None]
_LENGTH = re.compile(r"\(.*?\)")


@functools.lru_cache(maxsize=64)
def _unnest_insert(tables: tuple[str, ...], dialect: Dialect) -> tuple[str, list[list[_Column]]]:
    """The one-statement INSERT of rows of ``tables`` (in dependency order), compiled once:
    ``WITH staged_0 AS (INSERT INTO t0 (c, …) SELECT * FROM unnest($1::type[], …)), …
    INSERT INTO tn …``. Each parameter is an array of one column's values and keeps the
    column type's bind processor for its elements.

    The text depends only on the tables, never on how many rows each gets: it is compiled once
    and stays prepared on the connection whatever the batch (a text per row count cost 4–44 ms
    to compile and a parse each). The arrays are cast without length or precision
    (``VARCHAR[]``, not ``VARCHAR(120)[]``: an explicit cast would cut a long value short); the
    INSERT's own conversion to the column checks them. Postgres checks the foreign keys at the
    end of the statement, when all the rows exist."""
    quote = dialect.identifier_preparer
    inserts: list[str] = []
    columns: list[list[_Column]] = []
    n = 0
    for name in tables:
        table = Base.metadata.tables[name]
        arrays = []
        for c in table.columns:
            n += 1
            arrays.append(f"${n}::{_LENGTH.sub('', c.type.compile(dialect=dialect))}[]")
        names = ", ".join(quote.quote(c.name) for c in table.columns)
        target = quote.format_table(table)
        # names from the metadata, quoted; the values travel as parameters
        inserts.append(f"INSERT INTO {target} ({names}) SELECT * FROM unnest({', '.join(arrays)})")  # noqa: S608
        columns.append(
            [(c.key, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns]
        )
    *first, last = inserts
    ctes = ", ".join(f"staged_{i} AS ({sql})" for i, sql in enumerate(first))
    return (f"WITH {ctes} {last}" if ctes else last), columns


def _row_of(obj: Base) -> dict[str, Any]:
    """The object's column values; a column left unset takes its Python default, which is
    also set on the object (so that what the caller shows is what was stored)."""
    row: dict[str, Any] = {}
    values = obj.__dict__
    for column in obj.__table__.columns:
        value = values.get(column.key)
        if value is None and column.default is not None and column.key not in values:
            default = column.default
            value = default.arg(None) if default.is_callable else default.arg
            setattr(obj, column.key, value)
        row[column.key] = value
    return row
