"""Service configuration: one optional YAML file plus environment variables, validated once."""

from __future__ import annotations

import ipaddress
import os
import secrets
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

DEFAULT_LINE_API_BASE = "https://api.line.me"


class ConfigError(ValueError):
    """Raised for unknown keys, wrong types or missing required settings."""


@dataclass(frozen=True, slots=True)
class Config:
    """Everything the service needs at start-up; secrets only ever come from the environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    db_path: Path = Path("data/tsunagu.db")
    # HMAC key for pseudonymous user keys and session signing (TSUNAGU_SECRET).
    secret: str = field(default="", repr=False)
    retention_days: int = 30
    idle_minutes: int = 30
    # Origins allowed to open the widget WebSocket; empty → same origin only.
    allowed_origins: tuple[str, ...] = ()
    line_channel_secret: str = field(default="", repr=False)
    line_channel_access_token: str = field(default="", repr=False)
    line_api_base: str = DEFAULT_LINE_API_BASE
    metrics_token: str = field(default="", repr=False)
    # Served over HTTPS (behind a proxy): cookies get the Secure flag.
    https: bool = False
    max_message_chars: int = 2000
    # Per-person and per-address rate limits of the chat (bot.web.limits); off only for
    # load tests and benchmarks, which are floods by design.
    rate_limits: bool = True
    # Reverse proxies (addresses or CIDRs) whose X-Forwarded-For is believed (bot.web.clientip).
    trusted_proxies: tuple[str, ...] = ()

    @property
    def line_enabled(self) -> bool:
        """True when both LINE credentials are set."""
        return bool(self.line_channel_secret and self.line_channel_access_token)


_ENV = {
    "TSUNAGU_HOST": "host",
    "TSUNAGU_PORT": "port",
    "TSUNAGU_DB": "db_path",
    "TSUNAGU_SECRET": "secret",
    "TSUNAGU_RETENTION_DAYS": "retention_days",
    "TSUNAGU_IDLE_MINUTES": "idle_minutes",
    "TSUNAGU_ALLOWED_ORIGINS": "allowed_origins",
    "LINE_CHANNEL_SECRET": "line_channel_secret",
    "LINE_CHANNEL_ACCESS_TOKEN": "line_channel_access_token",
    "TSUNAGU_LINE_API_BASE": "line_api_base",
    "TSUNAGU_METRICS_TOKEN": "metrics_token",
    "TSUNAGU_HTTPS": "https",
    "TSUNAGU_MAX_MESSAGE_CHARS": "max_message_chars",
    "TSUNAGU_RATE_LIMITS": "rate_limits",
    "TSUNAGU_TRUSTED_PROXIES": "trusted_proxies",
}
# Settings that may never be written in the YAML file.
_SECRET_KEYS = frozenset(
    {"secret", "line_channel_secret", "line_channel_access_token", "metrics_token"}
)


def _coerce(name: str, value: Any) -> Any:
    kind = {f.name: f.type for f in fields(Config)}[name]
    try:
        if kind == "int":
            return int(value)
        if kind == "bool":
            if isinstance(value, bool):
                return value
            return str(value).strip().lower() in {"1", "true", "yes", "on"}
        if kind == "Path":
            return Path(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v.strip() for v in value.split(",") if v.strip())
            return tuple(str(v) for v in value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name}: invalid value {value!r}") from exc


def load_config(
    path: Path | None = None,
    env: dict[str, str] | None = None,
    **overrides: Any,
) -> Config:
    """Build the Config from a YAML file, the environment and explicit overrides.

    Args:
        path: optional YAML file (also from ``TSUNAGU_CONFIG``).
        env: environment mapping; defaults to ``os.environ``.
        **overrides: values that win over file and environment (e.g. CLI flags).

    Returns:
        The validated Config.

    Raises:
        ConfigError: unknown keys, secrets in the file, or invalid values.
    """
    env = dict(os.environ if env is None else env)
    values: dict[str, Any] = {}
    path = path or (Path(env["TSUNAGU_CONFIG"]) if env.get("TSUNAGU_CONFIG") else None)
    if path is not None:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping")
        known = {f.name for f in fields(Config)}
        for key, value in data.items():
            if key not in known:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            if key in _SECRET_KEYS:
                raise ConfigError(f"{path}: {key!r} is a secret; set it in the environment")
            values[key] = _coerce(key, value)
    for var, name in _ENV.items():
        if env.get(var):
            values[name] = _coerce(name, env[var])
    for name, value in overrides.items():
        if value is not None:
            values[name] = _coerce(name, value) if not isinstance(value, Path) else value
    config = Config(**values)
    _check_networks("trusted_proxies", config.trusted_proxies)
    if not config.secret:
        config = replace(config, secret=_local_secret(config.db_path))
    return config


def _check_networks(name: str, values: tuple[str, ...]) -> None:
    for value in values:
        try:
            ipaddress.ip_network(value, strict=False)
        except ValueError as exc:
            raise ConfigError(f"{name}: {value!r} is not an address or CIDR") from exc


def _local_secret(db_path: Path) -> str:
    """A per-installation secret kept beside the database when TSUNAGU_SECRET is unset."""
    key_file = db_path.parent / "secret.key"
    if key_file.exists():
        return key_file.read_text(encoding="ascii").strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_hex(32)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(value)
    return value
