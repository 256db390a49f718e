"""Shared fixtures: sample sources copied to a temp folder, builds, and real Anki collections."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

from deckgen.build.pipeline import BuildResult, build

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "sample"
REPO = Path(__file__).parent.parent
T0 = 1_764_000_000  # a fixed build time (s), so tests control "the same second"


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
