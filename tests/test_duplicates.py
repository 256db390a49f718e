"""The near-duplicate prompt graph: the bucket search finds exactly the pairs the rule defines, and an
update with a few changed prompts gives exactly the graph a search from scratch gives."""

from __future__ import annotations

import itertools
import random

import pytest

from deckgen.sources import duplicates
from deckgen.sources.duplicates import DuplicateGraph, normal_prompt, related

LETTERS = "abcdefghijklmnop"


def _edges(graph: DuplicateGraph) -> set[tuple[str, str]]:
    return {(a, b) for a, others in graph.edges.items() for b in others if a < b}


def _pairwise(keys: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in itertools.combinations(sorted(set(keys)), 2) if related(a, b)}


def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choices(LETTERS, k=rng.randint(lo, hi)))


def _prompts(seed: int) -> list[str]:
    """Crowded templates (short and long context), free text, and one-word edits of them."""
    rng = random.Random(seed)
    base = [f"What is {_word(rng, 3, 9)}?" for _ in range(40)]
    base += [f"Why does the {_word(rng, 3, 9)} model overfit on small data?" for _ in range(25)]
    base += [" ".join(_word(rng, 2, 7) for _ in range(rng.randint(3, 12))) + "?" for _ in range(25)]
    edited = []
    for prompt in rng.sample(base, 30):
        words = prompt.rstrip("?").split()
        i = rng.randrange(len(words))
        kind = rng.randrange(4)
        if kind == 0:
            words[i] = words[i][:-1] or "x"
        elif kind == 1:
            words.insert(i, "the")
        elif kind == 2 and len(words) > 1:
            del words[i]
        else:
            words[i] += "s"
        edited.append(" ".join(words) + "?")
    return base + edited


@pytest.mark.parametrize("seed", range(4))
def test_bucket_search_finds_exactly_the_related_pairs(seed: int) -> None:
    keys = [normal_prompt(p) for p in _prompts(seed)]
    assert _edges(DuplicateGraph.build(keys)) == _pairwise(keys)


@pytest.mark.parametrize("seed", range(4))
def test_update_with_changed_prompts_equals_a_search_from_scratch(seed: int) -> None:
    rng = random.Random(seed)
    keys = [normal_prompt(p) for p in _prompts(seed)]
    old = DuplicateGraph.build(keys)
    changed = list(keys)
    changed[rng.randrange(len(changed))] += " again"  # a prompt edited
    del changed[rng.randrange(len(changed))]  # a note removed
    changed.append(keys[rng.randrange(len(keys))] + "s")  # a note added, near an existing one
    assert _edges(old.update(changed)) == _edges(DuplicateGraph.build(changed)) == _pairwise(changed)


@pytest.fixture
def similar_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many pairs the search compares with the (slow) closeness test: ``[count]``."""
    calls = [0]
    real = duplicates.similar

    def counting(a: str, b: str) -> bool:
        calls[0] += 1
        return real(a, b)

    monkeypatch.setattr(duplicates, "similar", counting)
    return calls


def test_update_probes_only_the_changed_prompt(similar_calls: list[int]) -> None:
    rng = random.Random(5)
    keys = [normal_prompt(f"How does {_word(rng, 4, 9)} change the {_word(rng, 4, 9)}?") for _ in range(3000)]
    graph = DuplicateGraph.build(keys)
    similar_calls[0] = 0
    graph.update([*keys[1:], keys[0] + " twice"])
    assert similar_calls[0] < 20  # only candidates one word away from the changed prompt are compared


def test_search_compares_few_pairs_on_a_large_templated_deck(similar_calls: list[int]) -> None:
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    prompts = [f"What is {''.join(rng.choices(letters, k=rng.randint(5, 10)))}?" for _ in range(5000)]
    duplicates.duplicate_pairs(prompts)
    assert similar_calls[0] < 5 * len(prompts)  # comparing every pair would be 12.5 million


def test_graph_survives_a_round_trip_and_rejects_foreign_data() -> None:
    keys = [normal_prompt(p) for p in _prompts(1)]
    graph = DuplicateGraph.build(keys)
    again = DuplicateGraph.from_json(graph.to_json())
    assert again is not None and again.keys == graph.keys and _edges(again) == _edges(graph)
    assert DuplicateGraph.from_json({"version": -1, "keys": [], "pairs": []}) is None
    assert DuplicateGraph.from_json({"version": duplicates.RULE_VERSION, "keys": ["a"], "pairs": [["a", "b"]]}) is None
    assert DuplicateGraph.from_json("garbage") is None
