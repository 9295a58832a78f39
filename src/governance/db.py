"""Database engine, sessions and the declarative base shared by every domain's models."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, Request
from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Dialect,
    Engine,
    MetaData,
    Numeric,
    Select,
    String,
    Table,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    insert,
    select,
    text,
)
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    QueryableAttribute,
    Session,
    mapped_column,
    sessionmaker,
)
from sqlalchemy.types import TypeDecorator, TypeEngine

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), plain JSON text on SQLite.
JSONType = JSON().with_variant(JSONB(), "postgresql")


class ExactDecimal(TypeDecorator[Decimal]):
    """Decimals stay exact: NUMERIC on PostgreSQL, text on SQLite (whose NUMERIC is a float)."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int | None = None, scale: int | None = None) -> None:
        super().__init__(precision=precision, scale=scale, asdecimal=True)

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(String(64))
        return dialect.type_descriptor(self.impl_instance)

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None or dialect.name != "sqlite":
            return value
        return format(value, "f")

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return value if isinstance(value, Decimal) else Decimal(str(value))


# Money: exact, 8 decimal places. Scores and ratios: unconstrained, they can exceed money's range.
Money = ExactDecimal(24, 8)
Score = ExactDecimal()


def utcnow() -> datetime:
    """Timezone-aware now, the only clock the models use."""
    return datetime.now(UTC)


Clock = Callable[[], datetime]
"""What a long-running job reads the time from: `utcnow`, unless a test hands it a clock it
moves by hand (the push, the pull and the worker take one as `clock=`)."""


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on both databases (SQLite keeps no zone of its own)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        # A timestamp without a zone (say, a query filter) is taken to be UTC.
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    """`created_at` and `updated_at` for every table."""

    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, server_default=func.now()
    )
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, server_default=func.now()
    )


class DealContext:
    """The deal's context, copied onto analytics facts so reports filter and group without a
    join: region, segment, team, rep and the playbook version the figures were measured on."""

    region: Mapped[str | None] = mapped_column(String(100))
    segment: Mapped[str | None] = mapped_column(String(100))
    team: Mapped[str | None] = mapped_column(String(100))
    owner_rep: Mapped[str | None] = mapped_column(String(100))
    playbook_key: Mapped[str | None] = mapped_column(String(64))
    playbook_version: Mapped[int | None]


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def json_text(value: Any) -> str:
    """A JSON column's value as stored: orjson (several times faster than the standard library;
    the sync stores thousands of check bodies a page), the standard library for what orjson
    refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        return json.dumps(value)


def table(model: type[Base]) -> Table:
    """A model's table, for Core statements (bulk inserts without the ORM's per-row work)."""
    return cast(Table, model.__table__)


COPY_FROM = 50
"""Rows from which `insert_rows` uses COPY: below, an INSERT is one round trip fewer."""


def insert_rows(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> None:
    """Insert many rows of a table (each with the same columns) in the session's transaction.

    On PostgreSQL, from `COPY_FROM` rows, they go by COPY: no statement per row for the
    server to run, and no statement of thousands of placeholders for psycopg to re-parse in
    Python (an executemany sends a page of checks several times slower). Values are converted
    as the columns' types would bind them. SQLite takes an executemany.
    """
    if not rows:
        return
    target = table(model)
    if session.get_bind().dialect.name != "postgresql" or len(rows) < COPY_FROM:
        session.execute(insert(target), list(rows))
        return
    names = list(rows[0])
    dialect = session.get_bind().dialect
    convert = [_copy_converter(target.c[name].type, dialect) for name in names]
    columns = ", ".join(dialect.identifier_preparer.quote(name) for name in names)
    driver = session.connection().connection.driver_connection
    assert driver is not None
    statement = f"COPY {dialect.identifier_preparer.format_table(target)} ({columns}) FROM STDIN"
    import psycopg

    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in names]
                for i, f in enumerate(convert):
                    if f is not None:
                        values[i] = f(values[i])
                copy.write_row(values)
    except psycopg.Error as exc:
        # As SQLAlchemy raises it for an INSERT (IntegrityError, DataError, …): the callers'
        # handlers (a page falling back to one record at a time, the API's 409 and 422) rely
        # on those types.
        raise DBAPIError.instance(
            statement, None, exc, psycopg.Error, hide_parameters=True, dialect=dialect
        ) from exc


def _copy_converter(column_type: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """How a value of this column travels in COPY's text form (None: as it is): JSON as its
    text, a string as itself (an enum member as its value), a decorated type (UTC timestamps,
    exact decimals) as it binds."""
    if isinstance(column_type, JSON):
        return json_text
    if isinstance(column_type, TypeDecorator):
        bind = column_type.process_bind_param
        return lambda value: bind(_plain(value), dialect)
    if isinstance(column_type, String):
        return _plain
    return None


def insert_many(session: Session, model: type[Base], rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert many rows of a table with an integer `id`; their ids, in the rows' order.

    On PostgreSQL the ids are drawn from the table's sequence first and the rows go by COPY
    (`insert_rows`); SQLite returns them from the INSERT.
    """
    if not rows:
        return []
    target = table(model)
    if session.get_bind().dialect.name != "postgresql":
        result = session.execute(
            insert(target).returning(target.c.id, sort_by_parameter_order=True), list(rows)
        )
        return list(result.scalars().all())
    ids = sorted(
        session.scalars(
            select(func.nextval(func.pg_get_serial_sequence(target.name, "id"))).select_from(
                func.generate_series(1, len(rows))
            )
        )
    )
    insert_rows(session, model, [{**row, "id": id_} for row, id_ in zip(rows, ids, strict=True)])
    return ids


def in_values(
    session: Session, column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """`column IN values`, for a batch of many values: on PostgreSQL `column = ANY(:array)`, one
    parameter rather than one per value (a statement of hundreds of placeholders is re-parsed
    by psycopg in Python on every call, and expanded by SQLAlchemy first)."""
    element = column.__clause_element__() if isinstance(column, QueryableAttribute) else column
    if session.get_bind().dialect.name == "postgresql":
        return element == any_(bindparam(None, list(values), type_=ARRAY(element.type)))
    return element.in_(list(values))


def unnest_rows(
    model: type[Base], names: Sequence[str], rows: Sequence[dict[str, Any]]
) -> Select[Any]:
    """PostgreSQL: these rows as `SELECT * FROM unnest(<one array per column>)`, for an
    `INSERT ... SELECT` (an upsert with RETURNING, say) of many rows in one statement with one
    parameter per column; `rows` must all have `names`.

    An INSERT of many rows otherwise carries a placeholder per value, which psycopg re-parses
    in Python on every call: a page of 2,000 deals is 50,000 placeholders. JSON travels as
    text and is cast back, the other columns as arrays of their own type.
    """
    target = table(model)
    arrays: list[Any] = []
    casts: list[Any] = []
    for i, name in enumerate(names):
        column_type = target.c[name].type
        values = [_plain(row[name]) for row in rows]
        if isinstance(column_type, JSON):
            arrays.append(
                bindparam(f"unnest_{i}", [json_text(v) for v in values], type_=ARRAY(Text()))
            )
            casts.append(JSONB)
        else:
            arrays.append(bindparam(f"unnest_{i}", values, type_=ARRAY(column_type)))
            casts.append(None)
    unnested = (
        func.unnest(*arrays)
        .table_valued(*(f"c{i}" for i in range(len(names))))
        .render_derived(name="unnested")
    )
    return select(
        *(
            sql_cast(unnested.c[f"c{i}"], type_) if type_ is not None else unnested.c[f"c{i}"]
            for i, type_ in enumerate(casts)
        )
    )


def _plain(value: Any) -> Any:
    """An enum member as its value (psycopg would send its name)."""
    return value.value if isinstance(value, Enum) else value


def make_engine(url: str, pool_size: int = 10) -> Engine:
    """An engine configured for the URL's database."""
    if is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            json_serializer=json_text,
            hide_parameters=True,  # errors are logged; bound values may hold secrets
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    # orjson parses JSONB several times faster than the standard library; queue pages and
    # check histories decode hundreds of documents each.
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_deserializer=orjson.loads,
        json_serializer=json_text,
        hide_parameters=True,  # errors are logged; bound values may hold secrets
    )


AFTER_COMMIT = "governance.after_commit"


def after_commit(session: Session, callback: Callable[[], None]) -> None:
    """Run `callback` once the unit of work has committed (never if it rolls back)."""
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


@contextmanager
def savepoint(session: Session) -> Iterator[Session]:
    """A SAVEPOINT: on error only the work inside it is undone, and so is what it queued for the
    commit (audit entries, after-commit callbacks: the lists in `session.info`)."""
    queued = {
        key: (value, len(value)) for key, value in session.info.items() if isinstance(value, list)
    }
    nested = session.begin_nested()
    try:
        yield session
    except BaseException:
        if nested.is_active:
            nested.rollback()  # rollback listeners may drop the lists: the transaction's stay
        for key, value in list(session.info.items()):
            if isinstance(value, list) and key not in queued:
                del session.info[key]
        for key, (value, length) in queued.items():
            del value[length:]
            session.info[key] = value
        raise
    else:
        nested.commit()


class Database:
    """An engine and its session factory; one per app or CLI process."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def session(self) -> Session:
        return self.sessionmaker()

    def ping(self) -> None:
        """Raise unless the database answers a trivial query."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """A session committed on success and rolled back on error (jobs, CLI, raw routes)."""
        session = self.session()
        try:
            yield session
            session.commit()
            for callback in session.info.pop(AFTER_COMMIT, ()):
                callback()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def dispose(self) -> None:
        self.engine.dispose()


def get_session(request: Request) -> Iterator[Session]:
    """The request's unit of work: committed when the handler succeeds, rolled back otherwise."""
    db: Database = request.app.state.db
    with db.unit_of_work() as session:
        yield session


# scope="function": commit right after the handler returns and before the response is sent, so
# a failed commit is the client's error response, and a 2xx means the change is durable.
DbSession = Annotated[Session, Depends(get_session, scope="function")]
