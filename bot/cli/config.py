"""``tsunagu config check``: what is set, what is missing (secrets shown only as set/unset)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from bot.config import _ENV, _SECRET_KEYS, ConfigError, load_config

# Settings an installation should have; unset, they are reported as missing.
_RECOMMENDED = {
    "TSUNAGU_SECRET": "unset: a random key in <data>/secret.key is used; back it up with the "
    "database, or set TSUNAGU_SECRET",
}


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``config`` command family."""
    p = sub.add_parser("config", help="check the configuration")
    commands = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    check = commands.add_parser("check", help="print what is set and what is missing")
    check.add_argument("--config", type=Path, help="YAML configuration file (env TSUNAGU_CONFIG)")
    check.set_defaults(func=run_check)


def check(env: dict[str, str], path: Path | None = None) -> tuple[list[str], list[str]]:
    """Describe the configuration without revealing secrets.

    Args:
        env: the environment.
        path: optional YAML file.

    Returns:
        (lines to print, problems); no problem means the service can start as configured.

    Raises:
        ConfigError: invalid file or values.
    """
    # A placeholder secret keeps load_config from creating secret.key as a side effect.
    config = load_config(path, env={**env, "TSUNAGU_SECRET": env.get("TSUNAGU_SECRET") or "-"})
    lines, problems = [], []
    width = max(len(v) for v in _ENV)
    for var, name in _ENV.items():
        given = bool(env.get(var))
        if name in _SECRET_KEYS:
            shown = "set" if given else "unset"
        else:
            value = getattr(config, name)
            shown = ",".join(value) if isinstance(value, tuple) else str(value)
            shown += "" if given else "  (default or file)"
        lines.append(f"{var:<{width}}  {shown}")
        if not given and var in _RECOMMENDED:
            lines.append(f"{'':<{width}}  → {_RECOMMENDED[var]}")
    if bool(config.line_channel_secret) != bool(config.line_channel_access_token):
        problems.append(
            "LINE is half configured: set both LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN"
        )
    elif not config.line_enabled:
        lines.append("LINE: off (LINE_CHANNEL_SECRET / LINE_CHANNEL_ACCESS_TOKEN unset)")
    directory = config.db_path.parent
    if directory.exists() and not os.access(directory, os.W_OK):
        problems.append(f"the database directory {directory} is not writable")
    return lines, problems


def run_check(args: argparse.Namespace) -> int:
    """Print the configuration; exit 1 when something must be fixed, 2 when invalid."""
    try:
        lines, problems = check(dict(os.environ), args.config)
    except (ConfigError, OSError) as exc:
        print(f"設定エラー / configuration error: {exc}")
        return 2
    print("\n".join(lines))
    for problem in problems:
        print(f"問題 / problem: {problem}")
    print("ok" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0
