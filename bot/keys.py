"""Typed application keys: every shared resource of the aiohttp app is declared here."""

from __future__ import annotations

from aiohttp import web

from bot.config import Config

CONFIG = web.AppKey("config", Config)
