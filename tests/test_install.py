"""The Dockerfile's install steps in a fresh venv: ``pip install .``, then the app starts."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.reliability.server import free_port, stop, wait_healthy

ROOT = Path(__file__).resolve().parent.parent
# A cold pip cache downloads every wheel: allow more than the suite's 120 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def test_dockerfile_install_steps_give_a_working_service(tmp_path: Path) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    # The steps this test repeats are the ones the image runs.
    assert re.search(r"python -m venv /opt/tsunagu", dockerfile)
    assert re.search(r"/opt/tsunagu/bin/pip install \.", dockerfile)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TSUNAGU_", "LINE_"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"  # pip's own cache is reused between runs
    # A copy of the sources, as the image's COPY lines make (no build leftovers, no venv).
    src = tmp_path / "src"
    src.mkdir()
    for name in re.findall(r"^COPY (?!--from)(.+?) \S+$", dockerfile, flags=re.M):
        for part in name.split():
            subprocess.run(["cp", "-r", str(ROOT / part), str(src)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(src)],
        check=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    # The dictionary check the image runs at build time.
    subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from sudachipy import Dictionary; Dictionary(dict='core')",
        ],
        check=True,
        timeout=120,
        cwd=tmp_path,
    )
    port = free_port()
    env.update(TSUNAGU_SECRET="install-test", TSUNAGU_DB=str(tmp_path / "data" / "tsunagu.db"))
    log = tmp_path / "serve.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(venv / "bin" / "tsunagu"), "serve", "--port", str(port)],
            cwd=tmp_path,  # not the repository: the installed package must be complete
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(port, proc, seconds=120)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/widget.js", timeout=10) as r:
            assert r.status == 200  # package data (static files) was installed
    finally:
        assert stop(proc) == 0, log.read_text(encoding="utf-8")[-3000:]
