"""The one SQLite file: connection settings and per-package numbered migrations."""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import sqlite_utils

logger = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]
T = TypeVar("T")

# Busy/locked errors that outlive busy_timeout (a WAL snapshot that went stale, recovery
# after a crash) are retried a few times with a short back-off before giving up.
RETRY_ATTEMPTS = 4
RETRY_DELAY_SECONDS = 0.02


class DatabaseError(RuntimeError):
    """The database cannot be opened or migrated; the message is meant for the operator."""


def connect(path: Path | str) -> sqlite_utils.Database:
    """Open (creating if needed) the SQLite file with the project's pragmas.

    WAL and ``synchronous=NORMAL`` make one-row commits ~50x faster than the defaults
    while staying safe against application crashes; foreign keys are on; a busy timeout
    lets a second connection (CLI next to the server) wait instead of failing.

    Args:
        path: file path, or ``":memory:"``.

    Returns:
        A sqlite-utils Database.

    Raises:
        DatabaseError: the file cannot be opened or is not a database.
    """
    if str(path) != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # Deleted text is overwritten, not left in free pages (privacy: 履歴を消して).
        conn.execute("PRAGMA secure_delete = ON")
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot open database {path}: {exc}") from exc
    return sqlite_utils.Database(conn)


def is_busy(exc: BaseException) -> bool:
    """True for SQLite's transient "database is locked" / "busy" errors."""
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def retry_busy(write: Callable[[], T], attempts: int = RETRY_ATTEMPTS) -> T:
    """Run a write, retrying briefly when SQLite reports the database busy or locked.

    The write must be safe to repeat: one statement, or a transaction that rolls back
    completely when it fails.

    Args:
        write: the write to run.
        attempts: how many times to try in all.

    Returns:
        What ``write`` returned.

    Raises:
        sqlite3.Error: the last error, or any error that is not busy/locked.
    """
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or attempt == attempts:
                raise
            logger.warning("database busy (attempt %d of %d); retrying", attempt, attempts)
            time.sleep(RETRY_DELAY_SECONDS * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def storage_problem(exc: BaseException) -> str | None:
    """Explain a failed write for the operator, or None when it is not a storage problem.

    Args:
        exc: the exception a write raised.

    Returns:
        A short operator-facing explanation (disk full, read-only, I/O error, busy).
    """
    if not isinstance(exc, sqlite3.Error):
        return None
    code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
    text = str(exc).lower()
    if code == sqlite3.SQLITE_FULL or "disk is full" in text:
        return "the disk holding the database is full: free space, then nothing else is needed"
    if code == sqlite3.SQLITE_READONLY or "readonly" in text:
        return (
            "the database is read-only: give the service user write access to the file "
            "and its directory (SQLite writes -wal and -shm files beside it)"
        )
    if code == sqlite3.SQLITE_IOERR or "i/o error" in text:
        return "disk I/O error on the database: check the disk and the system log"
    if code == sqlite3.SQLITE_CANTOPEN or "unable to open" in text:
        return "the database file cannot be opened: check that it and its directory exist"
    if is_busy(exc):
        return "the database stayed locked by another process (a long CLI command?)"
    if code == sqlite3.SQLITE_CORRUPT or "malformed" in text:
        return "the database file is damaged: stop the service and restore a backup"
    return f"database error: {type(exc).__name__}"


def check_database(path: Path) -> None:
    """Check before start-up that the database can be created, read and written.

    Args:
        path: the SQLite file (need not exist yet).

    Raises:
        DatabaseError: with a message for the operator saying what to fix.
    """
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"cannot create the directory {directory}: {exc.strerror}") from exc
    if path.exists() and not path.is_file():
        raise DatabaseError(f"{path} is not a file")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise DatabaseError(
            f"the directory {directory} is not writable by this user: SQLite needs to create "
            f"the database and its -wal/-shm files there; fix the permissions or set TSUNAGU_DB"
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise DatabaseError(f"{path} is not readable and writable by this user")
    db = connect(path)
    try:
        conn = db.conn
        try:
            rows = conn.execute("PRAGMA quick_check").fetchall()
            # A write lock taken and released proves the file and directory accept writes.
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            problem = storage_problem(exc) or str(exc)
            raise DatabaseError(f"database {path} cannot be used: {problem}") from exc
        problems = [r[0] for r in rows if r[0] != "ok"]
        if problems:
            raise DatabaseError(
                f"database {path} is damaged ({problems[0]}); stop, restore a backup "
                "(README, Operating) and start again"
            )
    finally:
        conn.close()


def schema_version(db: sqlite_utils.Database, package: str) -> int:
    """Return the migration version of one package's tables (0 when none ran)."""
    if "schema_version" not in db.table_names():
        return 0
    row = db.execute("SELECT version FROM schema_version WHERE package = ?", [package]).fetchone()
    return int(row[0]) if row else 0


def migrate(db: sqlite_utils.Database, package: str, migrations: Sequence[Migration]) -> int:
    """Apply the package's migrations that have not run yet, each in its own transaction.

    Args:
        db: the open database.
        package: owner of the tables, e.g. ``"knowledge"`` or ``"handoff"``.
        migrations: ordered migrations; migration ``i`` brings the schema to version ``i + 1``.

    Returns:
        The schema version after migrating.

    Raises:
        DatabaseError: a migration failed (the database stays at the last good version),
            or the file is newer than this code.
    """
    db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (package TEXT PRIMARY KEY, version INTEGER)"
    )
    current = schema_version(db, package)
    if current > len(migrations):
        raise DatabaseError(
            f"database schema of {package!r} is version {current}, newer than this code "
            f"({len(migrations)}); upgrade tsunagu"
        )
    for version, migration in enumerate(migrations[current:], start=current + 1):
        conn = db.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            migration(db)
            conn.execute(
                "INSERT INTO schema_version (package, version) VALUES (?, ?) "
                "ON CONFLICT(package) DO UPDATE SET version = excluded.version",
                [package, version],
            )
            conn.execute("COMMIT")
        except Exception as exc:
            conn.execute("ROLLBACK")
            raise DatabaseError(f"migration {package} v{version} failed: {exc}") from exc
        logger.info("migrated %s to schema version %d", package, version)
    return len(migrations)
