"""The one SQLite file: connection settings and per-package numbered migrations."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlite_utils

logger = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]


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
