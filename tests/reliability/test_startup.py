"""``tsunagu serve`` refuses to start on a broken database, with a message and no traceback."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.reliability.server import ROOT, free_port, serve, stop, wait_healthy

pytestmark = pytest.mark.slow
_SETPRIV = shutil.which("setpriv") or "setpriv"


def _serve_once(db: Path, *, user: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUNAGU_", "LINE_"))}
    env["TSUNAGU_SECRET"] = "x"
    cmd = [sys.executable, "-m", "bot", "serve", "--port", str(free_port()), "--db", str(db)]
    if user is not None:
        cmd = [_SETPRIV, f"--reuid={user}", f"--regid={user}", "--clear-groups", *cmd]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    out = result.stdout + result.stderr
    assert result.returncode == 2, out
    assert "Traceback" not in out
    return out


def test_not_a_database(tmp_path: Path) -> None:
    db = tmp_path / "tsunagu.db"
    db.write_bytes(os.urandom(16384))
    out = _refused(_serve_once(db))
    assert "not a database" in out


def test_damaged_pages(tmp_path: Path) -> None:
    db = tmp_path / "tsunagu.db"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE t (a TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 200)
    conn.commit()
    conn.close()
    raw = bytearray(db.read_bytes())
    raw[4096 * 3 : 4096 * 3 + 2000] = os.urandom(2000)  # a B-tree page, header intact
    db.write_bytes(bytes(raw))
    out = _refused(_serve_once(db))
    assert "damaged" in out or "malformed" in out


def test_read_only_directory() -> None:
    # Not under tmp_path: pytest's base directory is private to root, so "nobody" below
    # could not even reach the data directory.
    base = Path(tempfile.mkdtemp(prefix="tsunagu-ro-"))
    base.chmod(0o755)
    data = base / "data"
    data.mkdir()
    data.chmod(0o555)
    # root ignores file modes: run the server as "nobody" then.
    user = 65534 if os.geteuid() == 0 else None
    if user is not None and not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges")
    try:
        out = _refused(_serve_once(data / "tsunagu.db", user=user))
    finally:
        data.chmod(0o755)
        shutil.rmtree(base)
    assert "not writable" in out


def test_starts_on_a_fresh_and_an_existing_database(tmp_path: Path) -> None:
    db, log = tmp_path / "tsunagu.db", tmp_path / "serve.log"
    for _ in range(2):  # create and migrate, then open the migrated file again
        port = free_port()
        proc = serve(db, port, log)
        try:
            wait_healthy(port, proc)
        finally:
            assert stop(proc) == 0, log.read_text()
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
