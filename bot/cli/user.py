"""``tsunagu user``: staff accounts (add, list, disable, passwd) and the first-run hint."""

from __future__ import annotations

import argparse
import getpass
import sys

from bot.cli.kb import add_db_argument, cli_actor, open_kb
from bot.config import ConfigError
from knowledge.base import KnowledgeBase
from knowledge.db import DatabaseError
from knowledge.models import ROLES
from knowledge.validation import ValidationError


def first_run_hint(kb: KnowledgeBase) -> str | None:
    """How to create the first admin, or None when an enabled admin exists."""
    if kb.has_admin():
        return None
    return (
        "管理者アカウントがまだありません。次のコマンドで作成してください:\n"
        "  tsunagu user add admin --role admin --password-stdin\n"
        "(パスワードを標準入力から読みます。10文字以上にしてください)\n"
        "No admin account yet. Create one with the command above."
    )


def register(sub: argparse._SubParsersAction) -> None:
    """Register ``user add|list|disable|passwd``."""
    user = sub.add_parser("user", help="staff accounts: add, list, disable, passwd")
    u_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)

    p = u_sub.add_parser("add", help="create an account")
    p.add_argument("name")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--office", help="office id (counselors see only their office)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add_db_argument(p)
    p.set_defaults(func=run_add)

    p = u_sub.add_parser("list", help="list accounts")
    add_db_argument(p)
    p.set_defaults(func=run_list)

    p = u_sub.add_parser("disable", help="disable an account")
    p.add_argument("name")
    add_db_argument(p)
    p.set_defaults(func=run_disable)

    p = u_sub.add_parser("passwd", help="set a new password")
    p.add_argument("name")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    add_db_argument(p)
    p.set_defaults(func=run_passwd)


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        print("--password-stdin を付けてください / use --password-stdin", file=sys.stderr)
        return None
    first = getpass.getpass("パスワード / password: ")
    if getpass.getpass("もう一度 / again: ") != first:
        print("パスワードが一致しません / passwords differ", file=sys.stderr)
        return None
    return first


def _fail(exc: Exception) -> int:
    if isinstance(exc, ValidationError):
        for _field, message in exc.errors:
            print(message, file=sys.stderr)
        return 1
    print(f"データベースエラー / database error: {exc}", file=sys.stderr)
    return 2


def run_add(args: argparse.Namespace) -> int:
    """Create an account."""
    if args.office is not None:
        from handoff.offices import load_directory

        known = sorted(o.id for o in load_directory())
        if args.office not in known:
            print(
                f"事務所 {args.office!r} はありません。次から選んでください / unknown office, "
                f"choose one of: {', '.join(known)}",
                file=sys.stderr,
            )
            return 1
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    try:
        kb = open_kb(args)
        user = kb.add_user(
            args.name, args.role, password, office_id=args.office, actor=cli_actor()
        )
    except (ValidationError, DatabaseError, ConfigError) as exc:
        return _fail(exc)
    print(f"作成しました / created: {user.name} ({user.role})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    """Print accounts: name, role, office, state."""
    try:
        kb = open_kb(args)
    except (DatabaseError, ConfigError) as exc:
        return _fail(exc)
    users = kb.list_users()
    if not users:
        print(first_run_hint(kb))
        return 0
    for u in users:
        state = "無効 disabled" if u.disabled else "有効 enabled"
        print(f"{u.name}\t{u.role}\t{u.office_id or '-'}\t{state}")
    return 0


def run_disable(args: argparse.Namespace) -> int:
    """Disable an account."""
    try:
        kb = open_kb(args)
        kb.disable_user(args.name, actor=cli_actor())
    except (ValidationError, DatabaseError, ConfigError) as exc:
        return _fail(exc)
    print(f"無効にしました / disabled: {args.name}")
    return 0


def run_passwd(args: argparse.Namespace) -> int:
    """Set a new password."""
    password = _read_password(args.password_stdin)
    if password is None:
        return 1
    try:
        kb = open_kb(args)
        kb.set_password(args.name, password, actor=cli_actor())
    except (ValidationError, DatabaseError, ConfigError) as exc:
        return _fail(exc)
    print(f"パスワードを変更しました / password changed: {args.name}")
    return 0
