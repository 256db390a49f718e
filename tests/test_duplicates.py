"""The near-duplicate prompt graph: the relation is what the module docstring states, the keyed search
finds exactly the pairs the relation defines (crowded templates included), and an update with a few
changed prompts gives exactly the graph a search from scratch gives."""

from __future__ import annotations

import itertools
import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deckgen.sources import duplicates
from deckgen.sources.duplicates import DuplicateGraph, normal_prompt, related

LETTERS = "abcdefghijklmnop"


def _edges(graph: DuplicateGraph) -> set[tuple[str, str]]:
    return {(a, b) for a, others in graph.edges.items() for b in others if a < b}


def _pairwise(keys: list[str]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in itertools.combinations(sorted(set(keys)), 2) if related(a, b)}


def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choices(LETTERS, k=rng.randint(lo, hi)))


def _typo(rng: random.Random, word: str) -> str:
    i = rng.randrange(len(word))
    return rng.choice([word[:i] + word[i + 1 :], word + "s", word[:i] + "x" + word[i + 1 :]]) or "x"


def _edit(rng: random.Random, prompt: str) -> str:
    """One of the edits authors make to a copy of a prompt, related or not."""
    words = prompt.rstrip("?").split()
    i, j = rng.randrange(len(words)), rng.randrange(len(words))
    kind = rng.randrange(8)
    if kind == 0:
        words[i] = _typo(rng, words[i])
    elif kind == 1:
        words.insert(i, "the")
    elif kind == 2 and len(words) > 1:
        del words[i]
    elif kind == 3:  # neighbours swapped, or a word moved
        words.insert(j, words.pop(i))
    elif kind == 4:  # two words changed, one of them a spelling variant
        words[i], words[j] = _typo(rng, words[i]), "a"
    elif kind == 5:  # two words replaced outright: never related
        words[i], words[j] = "model", "method"
    elif kind == 6:  # a word added and a typo: never related
        words[i] = _typo(rng, words[i])
        words.insert(j, "really")
    else:
        words[i] += "s"
    return " ".join(words) + "?"


def _prompts(seed: int) -> list[str]:
    """Crowded templates (one and two free words, short and long context, articles that are spelling
    variants of each other), free text, and edited copies of them."""
    rng = random.Random(seed)
    base = [f"What is {_word(rng, 3, 9)}?" for _ in range(40)]
    base += [f"What is {rng.choice(['a', 'an'])} {_word(rng, 3, 6)}?" for _ in range(50)]
    base += [f"How does {_word(rng, 3, 7)} change the {_word(rng, 3, 7)}?" for _ in range(40)]
    base += [f"Why does the {_word(rng, 3, 9)} model overfit on small data?" for _ in range(25)]
    base += [" ".join(_word(rng, 2, 7) for _ in range(rng.randint(1, 12))) + "?" for _ in range(25)]
    return base + [_edit(rng, p) for p in rng.sample(base, 60)]


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("what does the roc curve plot", "what does the roc curve plots"),  # a word changed
        ("what does the roc curve plot", "what does the curve plot"),  # a word dropped
        (
            "how does gradient descent pick the step size for a deep network in practice",
            "how does gradient descent pick the size step for a deep network in practice",  # neighbours swapped
        ),
        (
            "why does dropout reduce the overfitting in deep nets",
            "why does dropout reduce overfitting in the deep nets",
        ),
        ("what goes wrong if the model is biased in practice", "what goes wrongs if a model is biased in practice"),
        ("what goes wrong if the model is biased in practice", "what goes wrong if thes model is unbiased in practice"),
    ],
)
def test_related_prompts(a: str, b: str) -> None:
    assert related(a, b) and related(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("what goes wrong if the model is biased in practice", "what goes wrong if a model is unbiased in practice"),
        ("what goes wrong if the model is biased in practice", "what goes wrong if model is biased practice"),
        (
            "what goes wrong if the model is biased in practice",
            "what goes wrongs if the model is biased in the practice",
        ),
    ],
)
def test_alike_prompts_two_words_apart_without_a_spelling_variant_are_not_related(a: str, b: str) -> None:
    """Two words replaced outright, two dropped, a typo plus an added word."""
    assert duplicates.similar(a, b)
    assert not related(a, b) and not related(b, a)


def test_prompts_one_word_apart_but_not_alike_are_not_related() -> None:
    assert not related("what is precision", "what is recall")


def test_spelling_variants_differ_by_at_most_one_letter_each() -> None:
    variants = duplicates.spelling_variants
    assert variants("model", "models") and variants("model", "modle") and variants("model", "madel")
    assert variants("a", "an") and variants("is", "it")
    assert not variants("model", "model") and not variants("model", "mode1s") and not variants("the", "a")


@pytest.mark.parametrize("seed", range(4))
def test_keyed_search_finds_exactly_the_related_pairs(seed: int) -> None:
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
    changed.append(normal_prompt(_edit(rng, keys[rng.randrange(len(keys))])))  # an edited copy added
    assert _edges(old.update(changed)) == _edges(DuplicateGraph.build(changed)) == _pairwise(changed)


def test_many_changed_prompts_are_searched_from_scratch_with_the_same_result() -> None:
    rng = random.Random(9)
    keys = [normal_prompt(p) for p in _prompts(9)]
    changed = keys + [normal_prompt(_edit(rng, k)) for k in rng.sample(keys, 60)]
    assert _edges(DuplicateGraph.build(keys).update(changed)) == _pairwise(changed)


def test_crowded_templates_take_every_narrowing_path_and_stay_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many prompts "what is a/an X" and "why is a/an X model ..." (long: the letters cannot narrow
    them): one word apart, two words apart with the article as the spelling variant, words moved."""
    rng = random.Random(11)
    prompts = []
    for _ in range(70):
        term = _word(rng, 3, 7)
        prompts += [f"What is a {term}?", f"What is an {_typo(rng, term)}?", f"What is an {_word(rng, 3, 7)}?"]
        prompts += [f"Why is a {term} model preferred over the baseline?", f"Why is {term} a model preferred?"]
    prompts += [f"Why is an {_word(rng, 3, 7)} model preferred over the baseline?" for _ in range(40)]
    used: dict[str, int] = {}
    for name in ("_one_word_group", "_close_in_letters", "_deletions_needed"):
        real = getattr(duplicates, name)

        def counting(*args: object, _real: object = real, _name: str = name, **kwargs: object) -> object:
            used[_name] = used.get(_name, 0) + 1
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(duplicates, name, counting)
    real_second = duplicates._Rests.second_difference
    calls = [0]

    def second(self: duplicates._Rests, *args: object) -> None:
        calls[0] += 1
        real_second(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(duplicates._Rests, "second_difference", second)
    keys = [normal_prompt(p) for p in prompts]
    assert _edges(DuplicateGraph.build(keys)) == _pairwise(keys)
    assert calls[0] and used.get("_one_word_group") and used.get("_deletions_needed")


_VOCABULARY = ["what", "is", "a", "an", "the", "model", "models", "modle", "fit", "fits", "of", "bias"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.sampled_from(_VOCABULARY), min_size=0, max_size=7), min_size=2, max_size=45))
def test_keyed_search_equals_pairwise_on_any_deck_of_few_words(decks: list[list[str]]) -> None:
    """Few distinct words make every key crowded and many pairs related."""
    keys = [" ".join(ws) for ws in decks]
    assert _edges(DuplicateGraph.build(keys)) == _pairwise(keys)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=7), min_size=2, max_size=30),
    st.lists(st.lists(st.sampled_from(_VOCABULARY), min_size=1, max_size=7), max_size=4),
    st.data(),
)
def test_update_equals_search_from_scratch_on_any_change(
    decks: list[list[str]], added: list[list[str]], data: st.DataObject
) -> None:
    keys = [" ".join(ws) for ws in decks]
    removed = data.draw(st.sets(st.sampled_from(keys), max_size=3))
    changed = [k for k in keys if k not in removed] + [" ".join(ws) for ws in added]
    assert _edges(DuplicateGraph.build(keys).update(changed)) == _edges(DuplicateGraph.build(changed))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=8), st.lists(st.sampled_from(_VOCABULARY), max_size=8))
def test_relation_is_symmetric_and_implies_closeness(a: list[str], b: list[str]) -> None:
    x, y = " ".join(a), " ".join(b)
    assert related(x, y) == related(y, x)
    assert not related(x, y) or x == y or duplicates.similar(x, y)


def _lcs(a: str, b: str) -> int:
    row = [0] * (len(b) + 1)
    for ch in a:
        diagonal, row[0] = 0, 0
        for j, other in enumerate(b, 1):
            diagonal, row[j] = row[j], diagonal + 1 if ch == other else max(row[j], row[j - 1])
    return row[-1]


def _common(a: str, b: str) -> int:
    return sum((Counter(a) & Counter(b)).values())


_CONTEXT = st.text("ab ", max_size=30)
_WORD = st.text("abc ", min_size=1, max_size=10)  # a word, or words with the ones between them


@settings(max_examples=300, deadline=None)
@given(_CONTEXT, _CONTEXT, _CONTEXT, _WORD, _WORD)
def test_a_similar_partner_lacks_no_more_letters_than_the_bound(
    before: str, middle: str, after: str, u: str, v: str
) -> None:
    """The bound that narrows crowded keys by letters: a prompt whose text ``u`` is replaced by ``v``
    (in place: common subsequence; or moved: common multiset) and stays similar keeps all but
    ``_deletions_needed`` letters of ``u``."""
    depth = duplicates._deletions_needed(len(before + middle + after), len(u))
    x = before + u + middle + after
    if duplicates.similar(x, before + v + middle + after):
        assert len(u) - _lcs(u, v) <= depth
    if duplicates.similar(x, before + middle + v + after):
        assert len(u) - _common(u, v) <= depth


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
    assert similar_calls[0] < 20  # only candidates one or two words away from the changed prompt are compared


@pytest.mark.parametrize(
    "template",
    ["What is {}?", "What is a {}?|What is an {}?", "How does {} change the {}?", "Why is the {} of a {} biased?"],
)
def test_search_compares_few_pairs_on_a_large_templated_deck(similar_calls: list[int], template: str) -> None:
    rng = random.Random(3)
    letters = "abcdefghijklmnopqrstuvwxyz"
    shapes = template.split("|")
    prompts = [
        rng.choice(shapes).format(*("".join(rng.choices(letters, k=rng.randint(5, 10))) for _ in range(2)))
        for _ in range(4000)
    ]
    duplicates.duplicate_pairs(prompts)
    assert similar_calls[0] < 5 * len(prompts)  # comparing every pair would be 8 million


def test_graph_survives_a_round_trip_and_rejects_foreign_data() -> None:
    keys = [normal_prompt(p) for p in _prompts(1)]
    graph = DuplicateGraph.build(keys)
    again = DuplicateGraph.from_json(graph.to_json())
    assert again is not None and again.keys == graph.keys and _edges(again) == _edges(graph)
    assert DuplicateGraph.from_json({"version": -1, "keys": [], "pairs": []}) is None
    assert DuplicateGraph.from_json({"version": 1, "keys": ["a b", "a c"], "pairs": []}) is None  # the old relation
    assert DuplicateGraph.from_json({"version": duplicates.RULE_VERSION, "keys": ["a"], "pairs": [["a", "b"]]}) is None
    assert DuplicateGraph.from_json("garbage") is None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(max_codepoint=127), max_size=60) | st.text(max_size=30))
def test_normal_prompt_ascii_fast_path_folds_as_the_definition(prompt: str) -> None:
    # The table lookup used for ASCII prompts gives what the regex definition gives, for every character.
    assert normal_prompt(prompt) == " ".join(duplicates._PUNCT.sub(" ", prompt.casefold()).split())


def test_normal_prompt_folds_every_ascii_character_as_the_definition() -> None:
    every = "".join(chr(i) for i in range(128))
    for text in (every, every[::-1], "What's ROC?\x1cA_b\x7f"):
        assert normal_prompt(text) == " ".join(duplicates._PUNCT.sub(" ", text.casefold()).split())


def test_first_duplicates_points_each_prompt_at_its_first_related_or_equal_prompt() -> None:
    prompts = ["What is bias?", "what is a bias", "What is variance?", "what is bias", "What is a bias?"]
    graph = DuplicateGraph.build(normal_prompt(p) for p in prompts)
    assert duplicates.first_duplicates(prompts, graph) == [(1, 0), (3, 0), (4, 0)]
