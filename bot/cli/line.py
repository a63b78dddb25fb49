"""``tsunagu line check``: validate the LINE settings and optionally ask LINE who the bot is."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from urllib.parse import urlsplit

from bot.config import DEFAULT_LINE_API_BASE, Config, ConfigError, load_config


def register(sub: argparse._SubParsersAction) -> None:
    """Register the ``line`` command family."""
    p = sub.add_parser("line", help="LINE channel tools")
    line_sub = p.add_subparsers(dest="line_command", metavar="SUBCOMMAND", required=True)
    check = line_sub.add_parser(
        "check", help="validate LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, API base"
    )
    check.add_argument("--config", type=Path, help="YAML configuration file")
    check.add_argument(
        "--call-api",
        action="store_true",
        help="also call the bot info endpoint of the configured API base with the token",
    )
    check.set_defaults(func=run_check)


def problems(config: Config) -> list[str]:
    """Return what is wrong with the LINE settings (empty when usable).

    Args:
        config: the loaded configuration.

    Returns:
        Human-readable problems, one per setting.
    """
    found = []
    secret = config.line_channel_secret
    token = config.line_channel_access_token
    if not secret:
        found.append("LINE_CHANNEL_SECRET is not set (LINE Developers › Basic settings)")
    elif len(secret) != 32 or any(c not in "0123456789abcdef" for c in secret.lower()):
        found.append("LINE_CHANNEL_SECRET does not look like a channel secret (32 hex digits)")
    if not token:
        found.append("LINE_CHANNEL_ACCESS_TOKEN is not set (LINE Developers › Messaging API)")
    elif any(c.isspace() for c in token) or token.lower().startswith("bearer"):
        found.append("LINE_CHANNEL_ACCESS_TOKEN must be the bare token (no spaces, no 'Bearer')")
    parts = urlsplit(config.line_api_base)
    if parts.scheme not in {"http", "https"} or not parts.netloc:
        found.append(f"TSUNAGU_LINE_API_BASE is not an http(s) URL: {config.line_api_base!r}")
    elif parts.path not in {"", "/"} or parts.query:
        found.append("TSUNAGU_LINE_API_BASE must be a bare origin such as https://api.line.me")
    elif parts.scheme == "http" and parts.hostname not in {"127.0.0.1", "localhost", "::1"}:
        found.append("TSUNAGU_LINE_API_BASE uses plain http to a remote host; use https")
    return found


async def bot_info(config: Config) -> dict[str, str]:
    """Call ``GET /v2/bot/info`` at the configured base with the configured token."""
    from aiohttp import ClientTimeout
    from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, Configuration

    api_config = Configuration(
        host=config.line_api_base.rstrip("/"), access_token=config.line_channel_access_token
    )
    async with AsyncApiClient(api_config) as client:
        info = await AsyncMessagingApi(client).get_bot_info(
            _request_timeout=ClientTimeout(total=10)
        )
    return {
        "displayName": info.display_name,
        "basicId": info.basic_id,
        "chatMode": str(getattr(info.chat_mode, "value", info.chat_mode) or ""),
    }


def run_check(args: argparse.Namespace) -> int:
    """Print the findings; exit 0 when the settings are usable, 1 otherwise."""
    try:
        config = load_config(args.config)
    except (ConfigError, OSError) as exc:
        print(f"configuration error: {exc}")
        return 2
    found = problems(config)
    print(f"API base: {config.line_api_base}" + (" (LINE)" if config.line_api_base ==
          DEFAULT_LINE_API_BASE else ""))  # fmt: skip
    for problem in found:
        print(f"NG  {problem}")
    if found:
        return 1
    print("OK  channel secret and access token are set")
    print("    webhook URL to register: https://<your host>/line/webhook")
    if args.call_api:
        from linebot.v3.messaging import ApiException

        try:
            info = asyncio.run(bot_info(config))
        except ApiException as exc:
            hint = " (wrong or expired access token)" if exc.status == 401 else ""
            print(f"NG  bot info: HTTP {exc.status}{hint}")
            return 1
        except (OSError, TimeoutError) as exc:
            print(f"NG  bot info: cannot reach {config.line_api_base} ({type(exc).__name__})")
            return 1
        print(f"OK  bot: {info['displayName']} ({info['basicId']}), chat mode {info['chatMode']}")
        if info["chatMode"] and info["chatMode"] != "bot":
            print("NG  chat mode is not 'bot': turn chat off in the LINE Official Account Manager")
            return 1
    return 0
