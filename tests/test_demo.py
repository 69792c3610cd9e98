"""``make demo`` (scripts/demo.py) runs the tour to its end, and every check in it holds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def test_demo_runs_to_the_end_and_every_check_holds() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "OK: sse got ids 1 to 9, each exactly once and in order, over 3 connections." in out
    assert "stream after Last-Event-ID '3'" in out
    assert "stream after Last-Event-ID '6'" in out
    assert "POST / -> 200" in out
    assert "sse puts them back together." in out
    assert "\x1b[" not in out
    assert result.stderr == ""
