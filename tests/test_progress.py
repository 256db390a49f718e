"""The progress bar: only on a terminal, only once work has taken a while, plain under NO_COLOR, erased at the end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from deckgen.build.progress import ProgressBar, progress_bar


class Terminal(io.StringIO):
    def __init__(self, tty: bool = True) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bar_appears_only_after_the_delay_and_is_erased_at_the_end() -> None:
    out, clock = Terminal(), Clock()
    bar = ProgressBar(out, "rendering", color=False, clock=clock)
    bar(10, 100)
    clock.now = 0.5
    bar(50, 100)
    assert out.getvalue() == ""  # a short build never shows a bar
    clock.now = 1.2
    bar(60, 100)
    assert out.getvalue().startswith("\rrendering [") and "60/100  60%" in out.getvalue()
    bar.close()
    assert out.getvalue().endswith("\r") and out.getvalue().split("\r")[-2].strip() == ""


def test_redraws_are_throttled_but_the_last_unit_is_always_shown() -> None:
    out, clock = Terminal(), Clock()
    bar = ProgressBar(out, "rendering", color=False, clock=clock, delay=0, after="writing the package")
    bar(1, 3)
    bar(2, 3)  # same instant: skipped
    assert out.getvalue().count("\r") == 1
    bar(3, 3)
    assert "3/3 done; writing the package" in out.getvalue()


@pytest.mark.parametrize(
    ("tty", "quiet", "env", "shown"),
    [
        (True, False, {}, True),
        (False, False, {}, False),  # piped or redirected: CI logs stay clean
        (True, True, {}, False),  # --quiet
        (True, False, {"TERM": "dumb"}, False),  # cannot rewrite a line
    ],
)
def test_bar_only_for_interactive_terminals(tty: bool, quiet: bool, env: dict[str, str], shown: bool) -> None:
    assert (progress_bar(Terminal(tty), "x", quiet=quiet, environ=env) is not None) == shown


@pytest.mark.parametrize(("env", "colored"), [({}, True), ({"NO_COLOR": "1"}, False), ({"NO_COLOR": ""}, True)])
def test_no_color_turns_the_colour_off(env: dict[str, str], colored: bool) -> None:
    out, clock = Terminal(), Clock()
    bar = progress_bar(out, "rendering", environ=env)
    assert bar is not None
    bar.clock, bar.started = clock, -10.0
    bar(5, 10)
    assert ("\x1b[" in out.getvalue()) == colored


def test_build_progress_counts_notes_cold_and_warm(sample: Path, tmp_path: Path) -> None:
    from deckgen.build.pipeline import compile_deck

    calls: list[tuple[int, int]] = []
    for _ in ("cold", "warm"):
        calls.clear()
        compile_deck(sample, 1, cache_dir=tmp_path / "cache", jobs=1, progress=lambda d, t: calls.append((d, t)))
        assert {t for _, t in calls} <= {10}  # the sample deck's 10 notes, never rendered texts
        assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert calls == []  # warm: nothing left to do, no bar
    cold: list[tuple[int, int]] = []
    compile_deck(sample, 1, jobs=1, progress=lambda d, t: cold.append((d, t)))
    assert cold[-1] == (10, 10) and len(cold) == 10


def test_bar_names_what_it_counts() -> None:
    out = Terminal(True)
    bar = ProgressBar(out, "rendering", color=False, delay=0, clock=lambda: 5.0, unit="notes")
    bar(3, 10)
    assert "3/10 notes  30%" in out.getvalue()
