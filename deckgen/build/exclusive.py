"""One build at a time: OS locks on the source and output folders, held for the whole build.

A build that started earlier could otherwise finish later and overwrite a newer build's package and
lock with older content. The folders themselves are locked (``flock`` on a directory descriptor), so
nothing is ever created in the source folder, where version control would see it. The OS releases
the locks when the process ends, however it ends: a killed build never leaves a stale lock behind.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from deckgen.errors import DeckgenError

# Windows cannot lock a folder: there a lock file in the output folder (never the source) is used.
WINDOWS_LOCK_FILE = ".deckgen-build.lock"


@contextmanager
def exclusive(source: Path, out_dir: Path, on_wait: Callable[[Path], None] | None = None) -> Iterator[None]:
    """Hold exclusive locks on the source and output folders, waiting for other builds.

    ``on_wait`` is called with a folder another build holds, before waiting for it. Both folders
    must exist. They are locked in the order of their paths, so two builds never wait for each other
    in a circle (even one reading the other's output folder as its source).
    """
    with ExitStack() as stack:
        if sys.platform == "win32":  # pragma: no cover - a lock file, so only in the output folder
            stack.enter_context(_locked_windows(out_dir, on_wait))
        else:
            for folder in sorted({source.resolve(), out_dir.resolve()}):
                stack.enter_context(_flocked(folder, on_wait))
        yield


@contextmanager
def _flocked(folder: Path, on_wait: Callable[[Path], None] | None) -> Iterator[None]:
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError as exc:
        raise DeckgenError(f"cannot open {folder} to lock it: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait(folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


if sys.platform == "win32":  # pragma: no cover - exercised on Windows only

    @contextmanager
    def _locked_windows(folder: Path, on_wait: Callable[[Path], None] | None) -> Iterator[None]:
        import msvcrt

        path = folder / WINDOWS_LOCK_FILE
        try:
            fh = path.open("a+b")
        except OSError as exc:
            raise DeckgenError(f"cannot create the build lock {path}: {exc.strerror or exc}") from exc
        with fh:
            waited = False
            while True:
                try:
                    fh.seek(0)
                    msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if not waited and on_wait is not None:
                        on_wait(folder)
                    waited = True
                    time.sleep(0.2)
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
