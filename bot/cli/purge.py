"""``tsunagu purge``: delete everything past the retention period now (cron-friendly)."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace

from bot import retention
from bot.cli.kb import add_db_argument
from bot.config import ConfigError, load_config
from knowledge.db import DatabaseError, connect


def register(sub: argparse._SubParsersAction) -> None:
    """Register ``purge``."""
    p = sub.add_parser(
        "purge",
        help="delete conversations, cases, event ids and LINE ids past the retention period",
    )
    p.add_argument(
        "--days",
        type=int,
        help="retention in days (default: retention_days of the config, 30)",
    )
    p.add_argument("--vacuum", action="store_true", help="also rebuild the file so it shrinks")
    p.add_argument("--json", action="store_true", help="print the counts as one JSON line")
    add_db_argument(p)
    p.set_defaults(func=run_purge)


def run_purge(args: argparse.Namespace) -> int:
    """Purge the database named by ``--db`` (or the configured one) and print the counts."""
    try:
        config = load_config(db_path=args.db)
    except ConfigError as exc:
        print(f"設定が正しくありません: {exc}", file=sys.stderr)
        return 2
    if args.days is not None:
        if args.days < 1:
            print("--days は 1 以上にしてください。", file=sys.stderr)
            return 2
        config = replace(config, retention_days=args.days)
    if not config.db_path.exists():
        print(f"データベースがありません: {config.db_path}", file=sys.stderr)
        return 1
    try:
        db = connect(config.db_path)
    except DatabaseError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        report = retention.purge(db, config, vacuum=args.vacuum)
    finally:
        db.close()
    if args.json:
        print(json.dumps(report.as_dict(), sort_keys=True))
    else:
        print(
            f"{config.retention_days}日より前のデータを削除しました: "
            f"会話 {report.conversations} 件、引き継ぎ {report.escalations} 件、"
            f"イベントID {report.events} 件、LINE ID {report.line_ids} 件"
        )
    return 0
