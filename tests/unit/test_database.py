"""The shared SQLite layer: migrations per component, transactions and clear errors."""

import sqlite3

import pytest

from digitlab.lab.database import DatabaseError, Schema, connect, schema_version, transaction

NOTES_V1 = Schema("notes", ("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);",))
NOTES_V2 = Schema(
    "notes",
    NOTES_V1.migrations + ("ALTER TABLE notes ADD COLUMN author TEXT;\nCREATE INDEX notes_author ON notes (author);",),
)
TAGS = Schema("tags", ("CREATE TABLE tags (name TEXT PRIMARY KEY);",))


def test_connect_creates_the_file_in_wal_mode_with_each_schema(tmp_path):
    path = tmp_path / "nested" / "lab.sqlite3"
    connection = connect(path, [NOTES_V1, TAGS])
    assert path.exists()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert schema_version(connection, "notes") == 1
    assert schema_version(connection, "tags") == 1
    assert schema_version(connection, "unknown") == 0


def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "lab.sqlite3"
    with transaction(connect(path, [NOTES_V1])) as old:
        old.execute("INSERT INTO notes (body) VALUES ('kept')")
    upgraded = connect(path, [NOTES_V2])
    assert schema_version(upgraded, "notes") == 2
    assert [tuple(row) for row in upgraded.execute("SELECT body, author FROM notes")] == [("kept", None)]


def test_a_failed_transaction_leaves_nothing_behind(tmp_path):
    connection = connect(tmp_path / "lab.sqlite3", [NOTES_V1])
    with pytest.raises(RuntimeError), transaction(connection):
        connection.execute("INSERT INTO notes (body) VALUES ('half')")
        raise RuntimeError("interrupted")
    assert connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 0


def test_a_newer_database_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "lab.sqlite3"
    connect(path, [NOTES_V2]).close()
    with pytest.raises(DatabaseError, match="newer than this release"):
        connect(path, [NOTES_V1])


def test_a_file_that_is_not_a_database_is_refused_with_a_sentence(tmp_path):
    path = tmp_path / "lab.sqlite3"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(DatabaseError, match="damaged or is not a digitlab database"):
        connect(path, [NOTES_V1])


def test_an_unwritable_location_is_refused_with_a_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(DatabaseError, match="Cannot open the database"):
        connect(blocker / "lab.sqlite3", [NOTES_V1])


def test_a_connection_can_be_used_from_another_thread(tmp_path):
    import threading

    connection = connect(tmp_path / "lab.sqlite3", [NOTES_V1])
    errors: list[BaseException] = []

    def write():
        try:
            with transaction(connection):
                connection.execute("INSERT INTO notes (body) VALUES ('from a thread')")
        except sqlite3.Error as error:
            errors.append(error)

    thread = threading.Thread(target=write)
    thread.start()
    thread.join()
    assert not errors
    assert connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 1


def test_reconnecting_to_an_up_to_date_database_writes_nothing(tmp_path):
    path = tmp_path / "lab.sqlite3"
    connect(path, [NOTES_V1, TAGS]).close()
    again = connect(path, [NOTES_V1, TAGS])
    assert again.total_changes == 0
    again.close()


def test_a_failed_commit_leaves_the_connection_usable(tmp_path):
    connection = connect(tmp_path / "lab.sqlite3", [NOTES_V1])
    connection.execute("PRAGMA foreign_keys=ON")
    connection.execute("CREATE TABLE parents (id INTEGER PRIMARY KEY)")
    connection.execute("CREATE TABLE children (parent INTEGER REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)")
    # A deferred foreign key is only checked at COMMIT, so the COMMIT itself fails.
    with pytest.raises(sqlite3.IntegrityError), transaction(connection):
        connection.execute("INSERT INTO children (parent) VALUES (42)")
    assert not connection.in_transaction
    with transaction(connection):
        connection.execute("INSERT INTO notes (body) VALUES ('still works')")
    assert connection.execute("SELECT COUNT(*) FROM notes").fetchone()[0] == 1
    connection.close()


def test_a_locked_database_is_not_called_damaged(tmp_path, monkeypatch):
    import digitlab.lab.database

    path = tmp_path / "lab.sqlite3"
    connect(path, [NOTES_V1]).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    monkeypatch.setattr(digitlab.lab.database, "BUSY_TIMEOUT_SECONDS", 0.1)
    try:
        # Upgrading to the newer schema needs the write lock that another process holds.
        with pytest.raises(DatabaseError, match="Cannot use the database .*locked"):
            connect(path, [NOTES_V2])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
