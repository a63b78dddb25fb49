"""``tsunagu serve``: run the web service (creating and migrating the database on first start)."""

from __future__ import annotations

import argparse
import logging
import sqlite3
from pathlib import Path

from aiohttp import web

from bot.config import Config, ConfigError, load_config
from knowledge.db import DatabaseError, check_database, storage_problem

logger = logging.getLogger(__name__)

# Seconds a stop (SIGTERM/SIGINT) waits for open requests after sockets were closed with a
# reconnect hint; below Docker's default 10 s, with compose's stop_grace_period above it.
SHUTDOWN_TIMEOUT_SECONDS = 8.0


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``serve`` command."""
    p = sub.add_parser("serve", help="run the web service (widget, LINE webhook, admin, console)")
    p.add_argument("--host", help="bind address (default 127.0.0.1, env TSUNAGU_HOST)")
    p.add_argument("--port", type=int, help="port (default 8080, env TSUNAGU_PORT)")
    p.add_argument(
        "--db", type=Path, help="SQLite file (default ./data/tsunagu.db, env TSUNAGU_DB)"
    )
    p.add_argument("--config", type=Path, help="YAML configuration file (env TSUNAGU_CONFIG)")
    p.set_defaults(func=run)


def prepare_database(config: Config) -> str | None:
    """Create and migrate the database and load the default knowledge on first start.

    Done before the server binds, so a broken database stops the start with a clear message.

    Args:
        config: the service configuration.

    Returns:
        The first-run hint for operators (how to create an admin), or None.

    Raises:
        DatabaseError: the database cannot be opened or migrated.
    """
    from handoff.store import ConversationStore
    from knowledge.base import KnowledgeBase
    from knowledge.db import connect

    first = not config.db_path.exists()
    check_database(config.db_path)
    db = connect(config.db_path)
    try:
        kb = KnowledgeBase.open(db)
        ConversationStore.open(db)
        if first:
            logger.info("created the database and loaded the default knowledge base")
        try:
            from bot.cli.user import first_run_hint
        except ImportError:  # the admin feature is optional
            return None
        return first_run_hint(kb)
    finally:
        db.close()


def run(args: argparse.Namespace) -> int:
    """Start the service and block until it stops."""
    from bot.app import create_app

    try:
        config = load_config(args.config, host=args.host, port=args.port, db_path=args.db)
        hint = prepare_database(config)
    except (ConfigError, OSError) as exc:
        print(f"設定エラー / configuration error: {exc}")
        return 2
    except DatabaseError as exc:
        print(f"データベースのエラー / database error: {exc}")
        return 2
    except sqlite3.Error as exc:
        print(f"データベースのエラー / database error: {storage_problem(exc)}")
        return 2
    if hint:
        print(hint)
    print(f"tsunagu: http://{config.host}:{config.port}/ (Ctrl+C で停止 / to stop)")
    # No access log: it would record the address of every anonymous person; the reverse
    # proxy can keep one if the operator needs it.
    web.run_app(
        create_app(config),
        host=config.host,
        port=config.port,
        print=None,
        access_log=None,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
    )
    logger.info("stopped")
    return 0
