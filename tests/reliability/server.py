"""Run ``tsunagu serve`` as a subprocess for the reliability tests (and wait for it)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINE_SECRET = "0123456789abcdef0123456789abcdef"
LINE_TOKEN = "reliability-token"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(
    db: Path,
    port: int,
    log: Path,
    *,
    line_base: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``tsunagu serve`` (stdout and stderr appended to ``log``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUNAGU_", "LINE_"))}
    env["TSUNAGU_SECRET"] = "reliability-secret"
    env["TSUNAGU_RATE_LIMITS"] = "0"  # a load test is a flood by design (bot.web.limits)
    if line_base:
        env.update(
            LINE_CHANNEL_SECRET=LINE_SECRET,
            LINE_CHANNEL_ACCESS_TOKEN=LINE_TOKEN,
            TSUNAGU_LINE_API_BASE=line_base,
        )
    cmd = [sys.executable, "-m", "bot", "serve", "--port", str(port), "--db", str(db)]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(port: int, proc: subprocess.Popen[bytes], seconds: float = 60.0) -> None:
    """Poll ``/healthz`` until it answers 200.

    Raises:
        RuntimeError: the server exited; TimeoutError: it never became healthy.
    """
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"tsunagu serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError("tsunagu serve did not become healthy")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """Stop a server politely (SIGTERM), killing it if it hangs; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)
