"""Tests of bot.channels."""
