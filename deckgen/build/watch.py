"""``deckgen build --watch``: wait for saved source files (watchfiles, a Rust file watcher) and yield them.

Only what an author edits counts: the lock and the output folder (which builds write), hidden
files (atomic-write temp files, editor swap files) and editor backups never trigger a rebuild.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import watchfiles

from deckgen.build.lock import LOCK_NAME

DEBOUNCE_MS = 200  # editors save in bursts (temp file, rename, chmod): one rebuild per save


class SourceFilter(watchfiles.DefaultFilter):
    """watchfiles' default filter (VCS folders, swap files, ``~`` backups) plus deckgen's own outputs."""

    def __init__(self, deck: Path, out_dir: Path) -> None:
        self.lock = (deck / LOCK_NAME).resolve()
        self.out_dir = out_dir.resolve()
        super().__init__()

    def __call__(self, change: watchfiles.Change, path: str) -> bool:
        p = Path(path)
        if p.name.startswith(".") or p == self.lock or p.is_relative_to(self.out_dir):
            return False
        return super().__call__(change, path)


def source_changes(deck: Path, out_dir: Path, stop: threading.Event | None = None) -> Iterator[list[Path]]:
    """Each batch of changed source paths (sorted), until ``stop`` is set or Ctrl-C is pressed."""
    for changes in watchfiles.watch(
        deck.resolve(),  # events then carry absolute paths, comparable with the filter's
        watch_filter=SourceFilter(deck, out_dir),
        debounce=DEBOUNCE_MS,
        stop_event=stop,
        raise_interrupt=False,  # Ctrl-C ends the iteration; the caller says goodbye
    ):
        yield sorted({Path(path) for _, path in changes})
