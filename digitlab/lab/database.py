"""The lab's embedded database: one SQLite file shared by every feature that keeps user data.

Each feature (saved drawings, training runs, ...) owns a ``Schema``: a component name and an
ordered list of migration scripts. ``connect`` brings every schema it is given up to date inside
one write transaction and records the versions in the ``schema_versions`` table, so features
migrate independently and a database written by an older release is upgraded on first use.

Connections run in autocommit mode; every write goes through ``transaction`` so that it is one
``BEGIN IMMEDIATE ... COMMIT``. WAL journaling lets readers (the dashboard) and writers (a
training worker, the command line) work at once, and ``synchronous=FULL`` means a write that
returned has reached the disk.
"""

import functools
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from digitlab.errors import DigitlabError
from digitlab.settings import DATABASE_VARIABLE, database_path

BUSY_TIMEOUT_SECONDS = 30.0


class DatabaseError(DigitlabError):
    """The database cannot be opened, is damaged, or was written by a newer release."""


@dataclass(frozen=True)
class Schema:
    """One feature's tables: ``migrations[i]`` is the SQL script that upgrades version ``i`` to ``i + 1``."""

    component: str
    migrations: tuple[str, ...]

    @property
    def version(self) -> int:
        return len(self.migrations)


def connect(path: Path | None = None, schemas: Sequence[Schema] = ()) -> sqlite3.Connection:
    """Open the database at ``path`` (default: ``settings.database_path()``) with ``schemas`` up to date."""
    path = Path(path) if path is not None else database_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as error:
        raise DatabaseError(f"Cannot open the database {path}: {error}.") from error
    try:
        connection.row_factory = sqlite3.Row
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute("PRAGMA foreign_keys=ON")
        for schema in schemas:
            apply_schema(connection, schema)
    except sqlite3.OperationalError as error:
        # Locked, read-only or unreachable files land here; "damaged" would send the user the wrong way.
        connection.close()
        raise DatabaseError(f"Cannot use the database {path}: {error}{_advice(error)}.") from error
    except sqlite3.DatabaseError as error:
        connection.close()
        raise DatabaseError(
            f"The database {path} is damaged or is not a digitlab database: {error}{_advice(error)}."
        ) from error
    except DatabaseError:
        connection.close()
        raise
    return connection


def reports_sqlite_errors(method: Callable) -> Callable:
    """Turn SQLite's errors in a method of a store with a ``path`` into one DatabaseError sentence.

    The stores (saved drawings, training runs) decorate every public method, so a full disk, a lock held too
    long or a damaged page reaches the command line and the dashboard as a sentence, never as sqlite3's error.
    """

    @functools.wraps(method)
    def reported(self, *arguments, **keywords):
        try:
            return method(self, *arguments, **keywords)
        except sqlite3.Error as error:
            raise DatabaseError(f"The database {self.path} could not be used: {error}{_advice(error)}.") from error

    return reported


def _advice(error: sqlite3.Error) -> str:
    """The end of a sentence about ``error``: what the user can do; empty where only a fix to digitlab would help."""
    if isinstance(error, sqlite3.OperationalError):
        # Locked, read-only, full or unreachable: the file itself is fine.
        return (
            "; try again once other digitlab processes using it (a training run, another dashboard) are done, "
            "and check that its disk has room and that you may write to it"
        )
    if type(error) is sqlite3.DatabaseError:
        # SQLite's plain DatabaseError is a damaged file or one that is not SQLite at all.
        return f"; move the file aside and digitlab starts a new one, or point {DATABASE_VARIABLE} at another file"
    return ""


@contextmanager
def transaction(connection: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed when the block ends, rolled back if it raises."""
    # IMMEDIATE takes the write lock up front, so two writers queue instead of failing halfway.
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield connection
        connection.execute("COMMIT")
    except BaseException:
        # SQLite may already have rolled back by itself (a full disk, an I/O error); a connection shared by
        # every dashboard session must never be left inside a transaction after a failed COMMIT either.
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


def schema_version(connection: sqlite3.Connection, component: str) -> int:
    """The version of ``component``'s tables in this database; 0 when it has none yet."""
    connection.execute("CREATE TABLE IF NOT EXISTS schema_versions (component TEXT PRIMARY KEY, version INTEGER)")
    return _recorded_version(connection, component) or 0


def apply_schema(connection: sqlite3.Connection, schema: Schema) -> None:
    """Run the migrations of ``schema`` that this database has not seen, in one transaction."""
    # Pages reconnect every second while they follow a run: an up-to-date database is only read, never written.
    if _recorded_version(connection, schema.component) == schema.version:
        return
    with transaction(connection):
        current = schema_version(connection, schema.component)
        if current > schema.version:
            raise DatabaseError(
                f"The database's {schema.component} tables are version {current}, newer than this release "
                f"understands ({schema.version}); upgrade digitlab or point DIGITLAB_DB at another file."
            )
        for script in schema.migrations[current:]:
            # executescript would commit the open transaction, so statements run one by one.
            for statement in _statements(script):
                connection.execute(statement)
        connection.execute(
            "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
            (schema.component, schema.version),
        )


def _recorded_version(connection: sqlite3.Connection, component: str) -> int | None:
    """``component``'s version without creating anything: None when the database has no version table yet."""
    exists = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'")
    if exists.fetchone() is None:
        return None
    row = connection.execute("SELECT version FROM schema_versions WHERE component = ?", (component,)).fetchone()
    return None if row is None else int(row[0])


def _statements(script: str) -> list[str]:
    """Split a migration script into complete SQL statements."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        raise ValueError(f"Incomplete SQL statement in a migration: {pending.strip()!r}")
    return statements
