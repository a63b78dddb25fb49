"""Typed application keys: every shared resource of the aiohttp app is declared here."""

from __future__ import annotations

import sqlite_utils
from aiohttp import web

from bot.config import Config
from bot.dialogue.engine import Engine
from handoff.bus import EventBus
from handoff.desk import Desk
from handoff.stats import ConversationTracker, Statistics
from handoff.store import ConversationStore
from knowledge.base import KnowledgeBase
from knowledge.sessions import SessionStore

CONFIG = web.AppKey("config", Config)
# Opened by bot.core in a cleanup context.
DB = web.AppKey("db", sqlite_utils.Database)
KB = web.AppKey("kb", KnowledgeBase)
CONVERSATIONS = web.AppKey("conversations", ConversationStore)
ENGINE = web.AppKey("engine", Engine)
# Staff web sessions, login throttling and audit (opened by bot.web.auth).
SESSIONS = web.AppKey("sessions", SessionStore)
# The counselor handover: cases and the relay's event bus (opened by bot.relay).
DESK = web.AppKey("desk", Desk)
BUS = web.AppKey("bus", EventBus)
# Statistics of ended conversations and the tracker of open ones (opened by bot.web.stats).
STATS = web.AppKey("stats", Statistics)
STATS_TRACKER = web.AppKey("stats_tracker", ConversationTracker)
