"""Shared fixtures: sample sources copied to a temp folder, builds, and real Anki collections."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

from deckgen.build.lock import LOCK_NAME
from deckgen.build.pipeline import BuildResult, build
from deckgen.errors import SourceError

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample"
REPO = Path(__file__).parent.parent
T0 = 1_764_000_000  # a fixed build time (s), so tests control "the same second"


def packages_loaded(args: Sequence[str], packages: Sequence[str]) -> list[str]:
    """Which of ``packages`` a ``deckgen ARGS`` run (in a fresh interpreter, exit status 0) has imported."""
    code = (
        "import atexit, json, sys\n"
        f"wanted = set({list(packages)!r})\n"
        "loaded = lambda: sorted({m.split('.')[0] for m in sys.modules} & wanted)\n"
        "atexit.register(lambda: print('loaded:', json.dumps(loaded())))\n"
        "from deckgen.cli import main\n"
        f"main({list(args)!r})\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("loaded: ")]
    loaded: list[str] = json.loads(line.removeprefix("loaded: "))
    return loaded


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite golden files under tests/data/")


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    """A private copy of tests/data/sample (the build writes its lock file there)."""
    dest = tmp_path / "source"
    shutil.copytree(SAMPLE, dest)
    return dest


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "build"


def build_at(source: Path, out: Path, now: int = T0, **kwargs: bool) -> BuildResult:
    return build(source, out, now=now, **kwargs)


@dataclass
class ImportLog:
    new: int
    updated: int
    duplicate: int
    conflicting: int
    first_field_match: int
    missing_notetype: int


class Anki:
    """A real Anki collection (the official ``anki`` package) in a temp folder."""

    def __init__(self, path: Path) -> None:
        self.col = Collection(str(path))

    def import_package(self, apkg: Path) -> ImportLog:
        request = ImportAnkiPackageRequest(package_path=str(apkg), options=ImportAnkiPackageOptions())
        log = self.col.import_anki_package(request).log
        return ImportLog(
            len(log.new),
            len(log.updated),
            len(log.duplicate),
            len(log.conflicting),
            len(log.first_field_match),
            len(log.missing_notetype),
        )

    def note_by_id_field(self, note_id: str):  # type: ignore[no-untyped-def]
        (nid,) = self.col.find_notes(f'"Id:{note_id}"')
        return self.col.get_note(nid)

    def cards_of(self, note_id: str):  # type: ignore[no-untyped-def]
        return [self.col.get_card(c) for c in self.note_by_id_field(note_id).card_ids()]

    def review_all(self, deck: str) -> int:
        """Answer every card of ``deck`` exactly once with Easy (it graduates); returns how many."""
        from anki.scheduler.v3 import CardAnswer

        self.col.decks.select(self.col.decks.id_for_name(deck))
        seen: set[int] = set()
        while (queued := self.col.sched.get_queued_cards()).cards:
            top = queued.cards[0]
            if top.card.id in seen:
                raise AssertionError(f"card {top.card.id} came back after Easy")
            seen.add(top.card.id)
            card = self.col.get_card(top.card.id)
            card.start_timer()
            self.col.sched.answer_card(
                self.col.sched.build_answer(card=card, states=top.states, rating=CardAnswer.EASY)
            )
        return len(seen)

    def close(self) -> None:
        self.col.close()


@pytest.fixture
def anki(tmp_path: Path) -> Iterator[Anki]:
    collection = Anki(tmp_path / "collection.anki2")
    yield collection
    collection.close()


# --- re-import scenarios: build, import, review every card, edit, rebuild, re-import ----------------------


@dataclass(frozen=True)
class State:
    """What a re-import must not disturb: notes, review history and each card's schedule."""

    notes: int
    revlog: int
    cards: dict[int, tuple[int, int, int, int]]  # card id -> (note id, deck id, ivl, due)
    ids: tuple[str, ...]  # the Id field of every note, sorted (duplicates show twice)

    @property
    def duplicates(self) -> set[str]:
        return {i for i in self.ids if self.ids.count(i) > 1}


def state(anki: Anki) -> State:
    col = anki.col
    rows = col.db.all("select id, nid, did, ivl, due from cards")
    ids = sorted(col.get_note(nid)["Id"] for nid in col.find_notes(""))
    return State(
        col.note_count(), col.db.scalar("select count() from revlog"), {r[0]: tuple(r[1:]) for r in rows}, tuple(ids)
    )


def imported_and_reviewed(src: Path, out: Path, anki: Anki, deck: str = "Sample Deck") -> State:
    anki.import_package(build_at(src, out, now=T0).output)
    assert anki.review_all(deck) > 0
    return state(anki)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new), encoding="utf-8")


def refused(src: Path, out: Path, now: int) -> tuple[str, ...]:
    """Build, expecting a refusal; the previous package and lock must stay byte-identical."""
    before = {p: p.read_bytes() for p in (src / LOCK_NAME, *out.glob("*.apkg"))}
    with pytest.raises(SourceError) as caught:
        build_at(src, out, now=now)
    assert {p: p.read_bytes() for p in before} == before
    return tuple(
        f"{d.location.path.name}:{d.location.line}:{d.location.col} {d.rule}" for d in caught.value.diagnostics
    )
