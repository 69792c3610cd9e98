"""
``scripts/unasync.py``, which generates ``sse_client.py`` from ``async_client.py``: its
``--check`` passes on the tree as committed, and fails when a replacement matches nothing or
when the generated client differs from the file.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "unasync.py"
SOURCE = ROOT / "src" / "ld_eventsource" / "async_client.py"
TARGET = ROOT / "src" / "ld_eventsource" / "sse_client.py"


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The script with ``args``, under this interpreter (whose venv holds ruff)."""
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def unasync(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The script, imported as a module."""
    spec = importlib.util.spec_from_file_location("unasync_script", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules.
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    return module


def test_the_committed_tree_passes() -> None:
    result = run("--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_phrase_that_no_longer_occurs_fails_the_check(tmp_path: Path) -> None:
    text = SOURCE.read_text(encoding="utf-8")
    assert "stream, for asyncio." in text
    source = tmp_path / "async_client.py"
    source.write_text(text.replace("stream, for asyncio.", "stream, with asyncio."))
    result = run("--check", "--source", source, "--target", TARGET)
    assert result.returncode == 1
    assert "match nothing" in result.stderr
    assert "Phrase(old='stream, for asyncio.'" in result.stderr
    assert result.stdout == ""


def test_a_pattern_that_matches_nothing_fails(unasync: ModuleType) -> None:
    text = SOURCE.read_text(encoding="utf-8")
    extra = unasync.Pattern(r"\basync with\b", "with")
    assert "async with" not in text
    with pytest.raises(unasync.UnasyncError, match=r"async with"):
        unasync.convert(text, [*unasync.REPLACEMENTS, extra])
    # Without it, every replacement applies.
    assert unasync.convert(text).startswith(unasync.HEADER)


def test_patterns_and_phrases_are_told_apart_by_kind(unasync: ModuleType) -> None:
    # A phrase is not a regular expression, whatever its first character: "." is a dot.
    assert unasync.Phrase("a.c", "x").apply("abc a.c") == ("abc x", 1)
    assert unasync.Pattern(r"a.c", "x").apply("abc a.c") == ("x x", 2)
    kinds = {type(r) for r in unasync.REPLACEMENTS}
    assert kinds == {unasync.Phrase, unasync.Pattern}


def test_a_target_that_differs_fails_the_check(tmp_path: Path) -> None:
    target = tmp_path / "sse_client.py"
    text = TARGET.read_text(encoding="utf-8")
    target.write_text(text.replace("def close(self)", "def close(self)  ", 1))
    result = run("--check", "--target", target)
    assert result.returncode == 1
    assert "out of date" in result.stderr
    assert result.stdout.startswith(f"--- {target}\n+++ generated\n")
    assert "-    def close(self)  " in result.stdout

    missing = run("--check", "--target", tmp_path / "absent.py")
    assert missing.returncode == 1
    assert "out of date" in missing.stderr


def test_writing_regenerates_the_target(tmp_path: Path) -> None:
    target = tmp_path / "sse_client.py"
    result = run("--target", target)
    assert result.returncode == 0, result.stderr
    assert target.read_text(encoding="utf-8") == TARGET.read_text(encoding="utf-8")


def test_ruff_is_found_on_path_when_not_beside_the_interpreter(
    unasync: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ruff = unasync.find_ruff()
    assert Path(ruff).name == "ruff"
    elsewhere = tmp_path / "bin"
    elsewhere.mkdir()
    monkeypatch.setattr(sys, "executable", str(elsewhere / "python"))
    monkeypatch.setattr(unasync.sysconfig, "get_path", lambda name: str(elsewhere))
    monkeypatch.setenv("PATH", str(Path(ruff).parent))
    assert unasync.find_ruff() == ruff
    monkeypatch.setenv("PATH", str(elsewhere))
    with pytest.raises(unasync.UnasyncError, match="ruff not found"):
        unasync.find_ruff()
    assert shutil.which("ruff", path=str(elsewhere)) is None
