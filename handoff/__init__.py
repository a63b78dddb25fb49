"""Escalation to human counselors: offices, queue, assignment, relay, privacy rules."""
