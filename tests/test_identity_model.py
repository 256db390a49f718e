"""Property test of the lock as the authority on identity: random renames (aliases in any order),
removals, restores and reused ids never change a continuing note's GUID, never give two notes one
GUID, and every refusal is one of the identity rules."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.anki import notetypes
from deckgen.build.lock import Lock, update_lock
from deckgen.render.markdown import RenderedNote
from deckgen.sources.model import Body, Question, SourceLocation

UUID = "0f0e0d0c-0b0a-4908-8706-050403020100"
IDS = [f"n{i}" for i in range(8)]
HERE = SourceLocation(Path("deck.md"), 1)


def rendered(note_id: str, aliases: tuple[str, ...], text: str, restore: bool = False) -> RenderedNote:
    note = Question(id=note_id, prompt="Q?", answer=Body(text, 2), location=HERE, aliases=aliases, restore=restore)
    fields = ("Q?", text, "", "", "Question", "", "", note_id, "")
    return RenderedNote(note, "D::A", notetypes.basic(), fields, (), (0,), ())


# One step: ("add", id) a new note; ("rename", k, id, order) logical note k takes id, naming its former
# ids in some order; ("remove", k); ("restore", k) brings a removed logical note back under its last id.
rename = st.tuples(st.just("rename"), st.integers(0, 2), st.sampled_from(IDS), st.randoms(use_true_random=False))
step = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(IDS)),
    rename,
    rename,
    rename,
    st.tuples(st.just("remove"), st.integers(0, 2)),
    st.tuples(st.just("restore"), st.integers(0, 2)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(step, min_size=1, max_size=14))
def test_guids_never_move_and_never_collide(steps: list[tuple]) -> None:  # type: ignore[type-arg]
    lock = Lock()
    notes: list[dict] = []  # type: ignore[type-arg]  # logical notes: id, history, live, guid
    now = 1_764_000_000
    for n, action in enumerate(steps):
        proposal = [dict(x, history=list(x["history"])) for x in notes]
        restoring = None
        if action[0] == "add":
            proposal.append({"id": action[1], "history": [], "live": True, "guid": None, "text": f"t{n}"})
        elif action[0] == "rename" and action[1] < len(proposal) and proposal[action[1]]["live"]:
            x = proposal[action[1]]
            if action[2] != x["id"]:
                x["history"].append(x["id"])
                x["id"] = action[2]
            action[3].shuffle(x["history"])
        elif action[0] == "remove" and action[1] < len(proposal):
            proposal[action[1]]["live"] = False
        elif action[0] == "restore" and action[1] < len(proposal) and not proposal[action[1]]["live"]:
            proposal[action[1]]["live"] = restoring = True
        else:
            continue
        live = [x for x in proposal if x["live"]]
        if len({x["id"] for x in live} | {a for x in live for a in x["history"]}) < sum(
            1 + len(x["history"]) for x in live
        ):
            continue  # an id written twice in the sources: id-duplicate, the parser's business
        built = [rendered(x["id"], tuple(x["history"]), x["text"], restore=bool(restoring)) for x in live]
        new_lock, diff = update_lock(lock, built, notetypes.all_notetypes(), now + n, UUID)
        if diff.problems:
            assert {p.rule for p in diff.problems} <= {"id-retired", "id-rename-conflict"}, diff.problems
            continue  # refused: nothing changes
        for x in live:
            guid = new_lock.notes[x["id"]].guid
            assert x["guid"] in (None, guid), f"{x['id']} changed GUID"
            x["guid"] = guid
        guids = [e.guid for e in new_lock.notes.values()]
        assert len(guids) == len(set(guids))
        assert all(new_lock.notes[x["id"]].removed is False for x in live)
        lock, notes = new_lock, proposal
