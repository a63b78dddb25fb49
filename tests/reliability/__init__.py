"""Reliability tests: start-up checks, storage faults, shutdown, kill -9 and restart."""
