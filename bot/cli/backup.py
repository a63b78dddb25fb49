"""``tsunagu backup PATH``: a consistent copy of the live database (SQLite online backup)."""

from __future__ import annotations

import argparse
import os
import sqlite3
import time
from pathlib import Path

from bot.config import ConfigError, load_config
from knowledge.db import storage_problem


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``backup`` command."""
    p = sub.add_parser(
        "backup",
        help="copy the database while the service runs (restore: README, Operating)",
    )
    p.add_argument("path", help="backup file, or a directory (ending in /) for a dated file in it")
    p.add_argument("--db", type=Path, help="SQLite file (default from config / TSUNAGU_DB)")
    p.set_defaults(func=run)


def backup(source: Path, target: Path) -> Path:
    """Copy ``source`` to ``target`` with SQLite's online backup API and verify the copy.

    The copy is one consistent snapshot even while the service writes (WAL readers do not
    block writers). It is written beside the target and renamed, so a failed backup never
    leaves a half-written file under the target name.

    Args:
        source: the live database.
        target: the backup file, or an existing directory (``tsunagu-YYYYmmdd-HHMMSS.db``).

    Returns:
        The path of the backup file.

    Raises:
        FileNotFoundError: no database at ``source``.
        sqlite3.Error: the copy failed or does not pass ``PRAGMA integrity_check``.
    """
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    if target.is_dir():
        target = target / time.strftime("tsunagu-%Y%m%d-%H%M%S.db")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
    try:
        src.execute("PRAGMA busy_timeout = 5000")
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # all pages in one step: one snapshot
            dst.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            result = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if result != "ok":
                raise sqlite3.DatabaseError(f"the copy failed its integrity check: {result}")
        finally:
            dst.close()
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        src.close()
    os.chmod(partial, 0o600)  # conversations: readable by the service user only
    os.replace(partial, target)
    return target


def run(args: argparse.Namespace) -> int:
    """Back up the database named by ``--db`` or the configuration."""
    try:
        source = args.db or load_config().db_path
    except (ConfigError, OSError) as exc:
        print(f"設定エラー / configuration error: {exc}")
        return 2
    target = Path(args.path)
    try:
        if args.path.endswith(("/", os.sep)):
            target.mkdir(parents=True, exist_ok=True, mode=0o700)
        written = backup(source, target)
    except FileNotFoundError as exc:
        print(f"バックアップできません / cannot back up: {exc}")
        return 2
    except sqlite3.Error as exc:
        print(f"バックアップに失敗しました / backup failed: {storage_problem(exc)} ({exc})")
        return 1
    except OSError as exc:
        print(f"バックアップに失敗しました / backup failed: {exc}")
        return 1
    size = written.stat().st_size / 1024 / 1024
    print(f"バックアップしました / backed up: {written} ({size:.1f} MiB, integrity ok)")
    return 0
