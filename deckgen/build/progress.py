"""A progress bar on stderr for long builds: only on a terminal, only once work has taken a while.

Pipes, CI logs and ``--quiet`` get nothing; ``NO_COLOR`` (https://no-color.org) turns the colour off;
``TERM=dumb`` terminals get no bar (they cannot rewrite a line).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Mapping
from typing import TextIO

DELAY_SECONDS = 1.0  # shorter runs finish before a bar would be worth reading
REFRESH_SECONDS = 0.1


class ProgressBar:
    """Call with (done, total) as work completes; ``close()`` erases the bar."""

    def __init__(
        self,
        stream: TextIO,
        label: str,
        *,
        color: bool,
        delay: float = DELAY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        after: str = "",
        unit: str = "",
    ) -> None:
        self.stream = stream
        self.unit = f" {unit}" if unit else ""  # what is counted, e.g. "notes"
        self.label = label
        self.color = color
        self.delay = delay
        self.clock = clock
        self.after = after  # shown once all units are done, while the rest of the work runs
        self.started = clock()
        self._last_draw = float("-inf")
        self._width = 0

    def __call__(self, done: int, total: int) -> None:
        now = self.clock()
        finished = total > 0 and done >= total
        if now - self.started < self.delay or (now - self._last_draw < REFRESH_SECONDS and not finished):
            return
        self._last_draw = now
        self._draw(self._line(done, total, finished))

    def _line(self, done: int, total: int, finished: bool) -> str:
        if finished and self.after:
            return f"{self.label}: {total}/{total}{self.unit} done; {self.after}…"
        columns = shutil.get_terminal_size((80, 24)).columns
        count = f" {done}/{total}{self.unit} {100 * done // max(total, 1):3d}%"
        width = max(10, min(40, columns - len(self.label) - len(count) - 4))
        filled = width * done // max(total, 1)
        bar = "#" * filled
        if self.color:
            bar = f"\x1b[36m{bar}\x1b[0m"
        return f"{self.label} [{bar}{'-' * (width - filled)}]{count}"

    def _draw(self, line: str) -> None:
        visible = len(line) - (9 if self.color and "\x1b[" in line else 0)
        self.stream.write("\r" + line + " " * max(0, self._width - visible))
        self.stream.flush()
        self._width = visible

    def close(self) -> None:
        if self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def progress_bar(
    stream: TextIO,
    label: str,
    *,
    quiet: bool = False,
    after: str = "",
    unit: str = "notes",
    environ: Mapping[str, str] | None = None,
) -> ProgressBar | None:
    """A bar for ``stream`` when it is an interactive terminal and the user did not ask for quiet."""
    env = os.environ if environ is None else environ
    if quiet or not stream.isatty() or env.get("TERM") == "dumb":
        return None
    return ProgressBar(stream, label, color=not env.get("NO_COLOR"), after=after, unit=unit)
