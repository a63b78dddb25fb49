"""``tsunagu kb``: import, export, validate and diff the knowledge base (staff CLI)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from bot.config import ConfigError, load_config
from knowledge.base import Change, KnowledgeBase
from knowledge.db import DatabaseError, connect
from knowledge.loader import Bundle, export_files, read_path
from knowledge.validation import ValidationError

_ENTITY_JA = {"resource": "窓口", "faq": "FAQ", "template": "文面"}
_ACTION_JA = {"create": "追加", "update": "変更"}


def add_db_argument(p: argparse.ArgumentParser) -> None:
    """The ``--db PATH`` option shared by the staff commands."""
    p.add_argument("--db", type=Path, help="SQLite file (default from config / TSUNAGU_DB)")


def open_kb(args: argparse.Namespace) -> KnowledgeBase:
    """Open (creating and migrating if needed) the knowledge base named by ``--db``."""
    path = args.db or load_config().db_path
    return KnowledgeBase.open(connect(path))


def cli_actor() -> str:
    """The revision actor for CLI changes: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (containers)
        return "cli"


def _actor(args: argparse.Namespace) -> str:
    return args.actor or cli_actor()


def register(sub: argparse._SubParsersAction) -> None:
    """Register ``kb import|export|validate|diff``."""
    kb = sub.add_parser("kb", help="knowledge base: import, export, validate, diff")
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="ACTION", required=True)

    p = kb_sub.add_parser("import", help="import a YAML file or every YAML file of a directory")
    p.add_argument("path", type=Path, metavar="FILE|DIR")
    p.add_argument("--actor", help="name recorded in the revisions (default cli:$USER)")
    add_db_argument(p)
    p.set_defaults(func=run_import)

    p = kb_sub.add_parser("export", help="write resources/faq/templates YAML into a directory")
    p.add_argument("path", type=Path, metavar="DIR")
    add_db_argument(p)
    p.set_defaults(func=run_export)

    p = kb_sub.add_parser("validate", help="check the stored knowledge (or FILE|DIR) for errors")
    p.add_argument("path", type=Path, nargs="?", metavar="FILE|DIR")
    add_db_argument(p)
    p.set_defaults(func=run_validate)

    p = kb_sub.add_parser("diff", help="show what importing FILE|DIR would change")
    p.add_argument("path", type=Path, metavar="FILE|DIR")
    add_db_argument(p)
    p.set_defaults(func=run_diff)


def _print_errors(errors: list[tuple[str, str]]) -> None:
    print(f"エラーが {len(errors)} 件あります / {len(errors)} error(s):", file=sys.stderr)
    for where, message in errors:
        print(f"  {where}: {message}", file=sys.stderr)


def _print_changes(changes: list[Change]) -> None:
    for c in changes:
        fields = f" ({', '.join(c.fields)})" if c.fields else ""
        print(f"  {_ACTION_JA[c.action]} {_ENTITY_JA[c.entity]} {c.entity_id}{fields}")


def _read(path: Path) -> Bundle | None:
    try:
        bundle = read_path(path)
    except FileNotFoundError:
        print(f"見つかりません / not found: {path}", file=sys.stderr)
        return None
    except ValidationError as exc:
        _print_errors(exc.errors)
        return None
    for name in bundle.skipped:
        print(f"スキップ（知識ファイルではありません）/ skipped: {name}", file=sys.stderr)
    return bundle


def run_import(args: argparse.Namespace) -> int:
    """Validate everything first, then import in one transaction (all or nothing)."""
    bundle = _read(args.path)
    if bundle is None:
        return 1
    try:
        kb = open_kb(args)
        changes = kb.import_bundle(bundle, actor=_actor(args))
    except (DatabaseError, ConfigError) as exc:
        print(f"データベースエラー / database error: {exc}", file=sys.stderr)
        return 2
    print(f"取り込みました: {len(changes)} 件の変更 / imported {len(changes)} change(s)")
    _print_changes(changes)
    return 0


def run_export(args: argparse.Namespace) -> int:
    """Write the canonical YAML files (byte-stable: export → import → export is identical)."""
    try:
        kb = open_kb(args)
    except (DatabaseError, ConfigError) as exc:
        print(f"データベースエラー / database error: {exc}", file=sys.stderr)
        return 2
    args.path.mkdir(parents=True, exist_ok=True)
    for name, text in export_files(kb.export_bundle()).items():
        (args.path / name).write_bytes(text.encode("utf-8"))
        print(f"書き出しました / wrote {args.path / name}")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    """Check the files given, or everything stored; exit 1 when there are errors."""
    if args.path is not None:
        bundle = _read(args.path)
        if bundle is None:
            return 1
        count = len(bundle.resources) + len(bundle.faq) + len(bundle.templates)
        print(f"問題ありません / OK: {count} 件")
        return 0
    try:
        kb = open_kb(args)
    except (DatabaseError, ConfigError) as exc:
        print(f"データベースエラー / database error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        _print_errors(exc.errors)
        return 1
    problems = kb.validate_all()
    if problems:
        _print_errors(problems)
        return 1
    b = kb.export_bundle()
    print(
        f"問題ありません / OK: 窓口 {len(b.resources)}・FAQ {len(b.faq)}・文面 {len(b.templates)}"
    )
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Print what an import would create or update; exit 0 even when there are changes."""
    bundle = _read(args.path)
    if bundle is None:
        return 1
    try:
        kb = open_kb(args)
    except (DatabaseError, ConfigError) as exc:
        print(f"データベースエラー / database error: {exc}", file=sys.stderr)
        return 2
    changes = kb.diff(bundle)
    if not changes:
        print("変更はありません / no changes")
        return 0
    print(f"取り込むと {len(changes)} 件変わります / {len(changes)} change(s):")
    _print_changes(changes)
    return 0
