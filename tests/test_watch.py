"""`deckgen build --watch` in a real process: edits rebuild the package, errors are survived, Ctrl-C stops cleanly."""

from __future__ import annotations

import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import REPO

WAIT = 60.0  # seconds: generous for a loaded 2-core machine; a pass takes a few seconds


class Watcher:
    """``deckgen build SOURCE --watch`` in a subprocess, its output read line by line."""

    def __init__(self, source: Path, out: Path) -> None:
        path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "deckgen", "build", str(source), "-o", str(out), "--watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, poke: Callable[[], None] | None = None) -> list[str]:
        """Lines up to the one containing ``text``; ``poke`` is repeated every few seconds until then
        (the first save can come before the watcher is listening)."""
        deadline = time.monotonic() + WAIT
        start = len(self.seen)
        next_poke = time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if poke is not None and time.monotonic() > next_poke:
                    poke()
                    next_poke = time.monotonic() + 3
                continue
            self.seen.append(line)
            if text in line:
                return self.seen[start:]
        raise AssertionError(f"no {text!r} within {WAIT}s; output so far:\n" + "\n".join(self.seen))


@pytest.fixture
def watcher(sample: Path, tmp_path: Path) -> Iterator[Watcher]:
    w = Watcher(sample, tmp_path / "out")
    yield w
    if w.proc.poll() is None:
        w.proc.kill()
        w.proc.wait()


def _answer(apkg: Path, note_id: str, tmp_path: Path) -> str:
    """The Answer field of a note in the built package (its collection is SQLite inside the zip)."""
    db = tmp_path / "read.anki2"
    with zipfile.ZipFile(apkg) as z:
        db.write_bytes(z.read("collection.anki2"))
    with sqlite3.connect(db) as conn:
        for (flds,) in conn.execute("SELECT flds FROM notes"):
            fields = flds.split("\x1f")
            if note_id in fields:
                return str(fields[1])
    raise AssertionError(f"{note_id} not in {apkg}")


def test_watch_rebuilds_on_save_survives_errors_and_stops_on_ctrl_c(
    watcher: Watcher, sample: Path, tmp_path: Path
) -> None:
    apkg = tmp_path / "out" / "sample-deck.apkg"
    first = watcher.wait_for("watching")
    assert any(line.startswith("wrote ") for line in first) and apkg.is_file()
    general = sample / "general.md"
    original = general.read_text(encoding="utf-8")

    edited = original.replace("Python for modelling", "Python for modelling and Rust for speed")
    general.write_text(edited, encoding="utf-8")
    lines = watcher.wait_for("rebuilt:", poke=lambda: general.write_text(edited, encoding="utf-8"))
    assert "changed: general.md" in lines
    assert "rebuilt: 0 added, 1 changed (gen-languages), 0 removed, 9 unchanged" in lines
    assert not any("Technical" in line for line in lines)  # only what changed, no subdeck table
    assert "Rust for speed" in _answer(apkg, "gen-languages", tmp_path)

    broken = edited.replace("<!-- id: gen-languages -->\n", "")
    general.write_text(broken, encoding="utf-8")
    lines = watcher.wait_for("waiting for the next save", poke=lambda: general.write_text(broken, encoding="utf-8"))
    assert any("[id-missing]" in line for line in lines) and any("nothing written" in line for line in lines)
    assert "Rust for speed" in _answer(apkg, "gen-languages", tmp_path)  # the previous package is intact

    fixed = edited.replace("Rust for speed", "Rust for tools")
    general.write_text(fixed, encoding="utf-8")
    lines = watcher.wait_for("rebuilt:", poke=lambda: general.write_text(fixed, encoding="utf-8"))
    assert "rebuilt: 0 added, 1 changed (gen-languages), 0 removed, 9 unchanged" in lines
    assert "Rust for tools" in _answer(apkg, "gen-languages", tmp_path)

    watcher.proc.send_signal(signal.SIGINT)
    assert watcher.proc.wait(timeout=WAIT) == 0
    watcher.wait_for("stopped watching")
    assert not any("Traceback" in line for line in watcher.seen)
