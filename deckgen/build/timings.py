"""Where a run's time goes, phase by phase, for benchmarks: ``DECKGEN_TIMINGS=FILE`` writes them as JSON.

``lap(name)`` charges the time since the previous lap to phase ``name`` (a stopwatch, so stages need
no wrapping). The first lap starts when the ``deckgen`` package is imported. Timings never reach a
build's output; without the variable nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

from deckgen import IMPORT_STARTED

ENV = "DECKGEN_TIMINGS"
_phases: dict[str, float] = {}
_last = IMPORT_STARTED


def lap(name: str) -> None:
    """Charge the time since the previous lap to ``name``."""
    global _last
    now = time.perf_counter()
    _phases[name] = _phases.get(name, 0.0) + now - _last
    _last = now


def write() -> None:
    """Write the phases to the file named by ``DECKGEN_TIMINGS`` (if set); best effort."""
    target = os.environ.get(ENV)
    if target:
        with contextlib.suppress(OSError):  # a benchmark aid: never fails a run
            Path(target).write_text(json.dumps(_phases, sort_keys=True), encoding="utf-8")
