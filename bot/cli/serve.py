"""``tsunagu serve``: run the web service."""

from __future__ import annotations

import argparse
from pathlib import Path

from aiohttp import web

from bot.config import ConfigError, load_config


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


def run(args: argparse.Namespace) -> int:
    """Start the service and block until it stops."""
    from bot.app import create_app

    try:
        config = load_config(args.config, host=args.host, port=args.port, db_path=args.db)
    except (ConfigError, OSError) as exc:
        print(f"設定エラー / configuration error: {exc}")
        return 2
    web.run_app(create_app(config), host=config.host, port=config.port, print=None)
    return 0
