"""Database plumbing: declarative base, portable column types, engine and unit of work."""

from __future__ import annotations

import asyncio
import functools
import json
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

import orjson
from sqlalchemy import MetaData, Numeric, String, Table, event, insert, inspect
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction
from sqlalchemy.types import DateTime, TypeDecorator, TypeEngine

from app.config import Settings
from app.metrics import GROUP_COMMIT_UNITS

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Money(TypeDecorator[Decimal]):
    """Exact decimals: NUMERIC on Postgres, text on SQLite (which has no decimal type)."""

    impl = Numeric(38, 12)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(48))
        return dialect.type_descriptor(Numeric(38, 12, asdecimal=True))

    def process_bind_param(self, value: Decimal | float | int | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = Decimal(str(value)) if not isinstance(value, Decimal) else value
        return format(value, "f") if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_dumps(value: Any) -> str:
    """JSON for the JSON columns (quote explanations, greeks, market snapshots): orjson, several
    times faster than ``json.dumps`` on the hot path; the standard library for what orjson
    refuses (integers over 64 bits). Non-finite floats are written as ``null`` (PostgreSQL's
    JSON has no NaN)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def json_loads(text: str | bytes) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:  # NaN / Infinity written by json.dumps
        return json.loads(text)


def create_engine(settings: Settings, *, read_only: bool = False) -> AsyncEngine:
    """One engine per process, with explicit pool limits and timeouts.

    ``read_only`` (SQLite): transactions start deferred, so a reader never waits for a writer
    (WAL) — for replaying the log, exports and analytics."""
    url = settings.database_url
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(
            url,
            echo=settings.db_echo,
            connect_args={"timeout": 15},
            json_serializer=json_dumps,
            json_deserializer=json_loads,
        )

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # let SQLAlchemy, not the driver, open transactions (savepoints and transactional
            # DDL then work), and take the write lock up front so two writers never deadlock
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=15000")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_pre_ping=settings.db_pool_pre_ping,
        # the most recently returned connection first: the group writer (one batch at a time)
        # keeps reusing one connection, whose prepared statements it has; idle ones time out
        pool_use_lifo=True,
        connect_args={"command_timeout": 10, "timeout": settings.db_pool_timeout_s},
        json_serializer=json_dumps,
        json_deserializer=json_loads,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


# ------------------------------------------------------------------------ staged inserts
_M = TypeVar("_M", bound=Base)
_STAGED = "staged_inserts"
_TOUCHED = "transaction_touched_database"


@event.listens_for(Session, "after_begin")
def _touched(session: Session, _transaction: SessionTransaction, _connection: Any) -> None:
    """A session's transaction has taken a connection (and begun on the database)."""
    session.info[_TOUCHED] = True


def fresh(cls: type[_M], /, **values: Any) -> _M:
    """A new object of a mapped class with ``values`` set as the ORM sets a loaded row's: in
    the instance's dict, without an attribute event per value (what ``cls(**values)`` costs,
    ~2 µs a value; the create path builds about 60 per RFQ). For objects written through
    :func:`stage`; relationship values are kept as given (a plain list stays a plain list),
    and later assignments are ordinary instrumented ones."""
    obj = inspect(cls).class_manager.new_instance()
    obj.__dict__.update(values)
    return cast(_M, obj)


def stage(session: AsyncSession, *rows: Base) -> None:
    """Queue new rows for :func:`write_staged`: multi-row Core INSERTs, one per table, instead
    of the ORM unit of work (whose per-object bookkeeping dominated the create-and-quote path).

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
    ordered = [
        (t, by_table.pop(t)) for t in _table_order(len(Base.metadata.tables)) if t in by_table
    ]
    if by_table:  # pragma: no cover - every model's table is in the metadata
        raise RuntimeError(f"staged rows for unknown tables: {list(by_table)}")
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql" and len(ordered) > 1:
        if last and isinstance(bind, AsyncEngine) and _untouched(session):
            await _group_writer(bind).write(ordered)
            return
        sql, params = _combined_statement(ordered, bind.dialect)
        connection = await session.connection()
        await connection.exec_driver_sql(sql, params)
        return
    for table, rows in ordered:
        await session.execute(insert(table), rows)


_Rows = list[tuple[Table, list[dict[str, Any]]]]


def _combined_statement(ordered: _Rows, dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """One statement, one round trip: every INSERT but the last in a WITH clause, each taking
    its rows as one array per column (``unnest``). Postgres checks the foreign keys at the end
    of the statement, when all the rows exist. The text depends only on the tables, never on
    how many rows each gets, so it is compiled once and stays prepared on the connection
    whatever the batch (a statement per row count cost 4–44 ms to compile and a parse each)."""
    sql, columns = _unnest_insert(tuple(t.name for t, _ in ordered), dialect)
    params: list[list[Any]] = []
    for (_, rows), table_columns in zip(ordered, columns, strict=True):
        for key, process in table_columns:
            if process is None:
                params.append([row[key] for row in rows])
            else:
                params.append([None if (v := row[key]) is None else process(v) for row in rows])
    return sql, tuple(params)


#: a batch's parameters stay under PostgreSQL's 32,767 bind parameters per statement
_MAX_BATCH_PARAMS = 30_000


class _GroupWriter:
    """Group commit of self-contained units of work (one engine, one event loop).

    A unit whose only statement is its staged write is queued here instead of taking a
    connection of its own. While a batch is being written, the units that arrive queue up;
    the next batch writes them all in one statement, in autocommit, on one connection: under
    load, one round trip, one parse and one WAL flush for many RFQs; idle, a unit is written at
    once (no timer). A batch is atomic: each of its units is either wholly stored or not at
    all, and no caller hears of success before its batch has committed. Should a batch fail
    because of a row (an integrity or data error: a constraint or a type refuses it), its
    units are written again one by one, so that only the faulty unit fails."""

    def __init__(self, engine: AsyncEngine) -> None:
        # weak: the writers are kept per engine, and must not keep a dropped engine alive
        self.engine = weakref.ref(engine)
        self.loop = asyncio.get_running_loop()
        self.queue: list[tuple[_Rows, int, asyncio.Future[None]]] = []
        self.draining = False

    async def write(self, ordered: _Rows) -> None:
        params = sum(len(rows) * len(t.columns) for t, rows in ordered)
        done: asyncio.Future[None] = self.loop.create_future()
        self.queue.append((ordered, params, done))
        if not self.draining:
            self.draining = True
            task = self.loop.create_task(self._drain())
            _DRAINS.add(task)
            task.add_done_callback(_DRAINS.discard)
        await done

    async def _drain(self) -> None:
        try:
            while self.queue:
                batch: list[tuple[_Rows, int, asyncio.Future[None]]] = []
                total = 0
                while self.queue and (not batch or total + self.queue[0][1] <= _MAX_BATCH_PARAMS):
                    unit = self.queue.pop(0)
                    batch.append(unit)
                    total += unit[1]
                await self._write_batch(batch)
        finally:
            self.draining = False

    async def _write_batch(self, batch: list[tuple[_Rows, int, asyncio.Future[None]]]) -> None:
        GROUP_COMMIT_UNITS.observe(len(batch))
        try:
            await self._execute(_merged([ordered for ordered, _, _ in batch]))
        except Exception as exc:
            if len(batch) == 1 or not isinstance(exc, IntegrityError | DataError):
                for _, _, done in batch:
                    _settle(done, exc)
                return
            for ordered, _, done in batch:  # find the faulty unit: each alone
                try:
                    await self._execute(ordered)
                except Exception as alone:
                    _settle(done, alone)
                else:
                    _settle(done, None)
            return
        for _, _, done in batch:
            _settle(done, None)

    async def _execute(self, ordered: _Rows) -> None:
        engine = self.engine()
        if engine is None:  # pragma: no cover - its callers hold their session's engine
            raise RuntimeError("the engine of a queued write is gone")
        sql, params = _combined_statement(ordered, engine.dialect)
        async with engine.connect() as alone:
            auto = await alone.execution_options(isolation_level="AUTOCOMMIT")
            await auto.exec_driver_sql(sql, params)


_DRAINS: set[asyncio.Task[None]] = set()
_WRITERS: weakref.WeakKeyDictionary[Engine, _GroupWriter] = weakref.WeakKeyDictionary()


def _group_writer(engine: AsyncEngine) -> _GroupWriter:
    writer = _WRITERS.get(engine.sync_engine)
    if writer is None or writer.loop is not asyncio.get_running_loop():
        writer = _WRITERS[engine.sync_engine] = _GroupWriter(engine)
    return writer


def _merged(units: list[_Rows]) -> _Rows:
    """The rows of several units, table by table, in the metadata's dependency order."""
    if len(units) == 1:
        return units[0]
    by_table: dict[Table, list[dict[str, Any]]] = {}
    for ordered in units:
        for table, rows in ordered:
            by_table.setdefault(table, []).extend(rows)
    return [(t, by_table[t]) for t in _table_order(len(Base.metadata.tables)) if t in by_table]


def _settle(done: asyncio.Future[None], exc: BaseException | None) -> None:
    if done.done():  # the request was cancelled while its unit was being written
        return
    if exc is None:
        done.set_result(None)
    else:
        done.set_exception(exc)


def _untouched(session: AsyncSession) -> bool:
    return not (session.info.get(_TOUCHED) or session.new or session.dirty or session.deleted)


# a column of an unnest INSERT: (column key, bind processor of the column's type)
_Column = tuple[str, Callable[[Any], Any] | None]


@functools.lru_cache(maxsize=4)
def _table_order(_n_tables: int) -> list[Table]:
    """The metadata's dependency order (sorted once per set of tables, not per write)."""
    return list(Base.metadata.sorted_tables)


@functools.lru_cache(maxsize=64)
def _unnest_insert(tables: tuple[str, ...], dialect: Dialect) -> tuple[str, list[list[_Column]]]:
    """The one-statement INSERT of rows of ``tables`` (in dependency order), compiled once:
    ``WITH s0 AS (INSERT INTO t0 (c, …) SELECT * FROM unnest($1::type[], …)), … INSERT INTO
    tn …``; each parameter is an array of one column's values and keeps the column type's
    bind processor for its elements."""
    quote = dialect.identifier_preparer
    inserts: list[str] = []
    columns: list[list[_Column]] = []
    n = 0
    for name in tables:
        table = Base.metadata.tables[name]
        arrays = []
        for c in table.columns:
            n += 1
            arrays.append(f"${n}::{c.type.compile(dialect=dialect)}[]")
        names = ", ".join(quote.quote(c.name) for c in table.columns)
        inserts.append(
            f"INSERT INTO {quote.format_table(table)} ({names}) "  # noqa: S608 - metadata names, quoted
            f"SELECT * FROM unnest({', '.join(arrays)})"
        )
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
