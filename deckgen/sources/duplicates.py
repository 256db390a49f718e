"""Near-identical prompts: which notes ask (almost) the same question, found without comparing every pair.

Two prompts are *related* when their normalised texts (case, punctuation and spacing ignored) are
identical, or differ by one word — replaced, added or dropped — and are still alike: at most 8
characters apart in length and a difflib ratio of at least 0.92. The relation depends on the two
prompts alone, so the related pairs of a deck can be kept between builds: ``DuplicateGraph.build``
finds them from scratch, ``DuplicateGraph.update`` probes only the prompts that changed against the
rest and gets exactly the same graph. ``first_duplicates`` turns a graph into the rule's findings.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

# Bump when the relation changes: a stored graph of another version is never used.
RULE_VERSION = 1
MAX_LENGTH_GAP = 8
MIN_RATIO = 0.92
# A bucket (prompts equal but for one word) larger than this is searched through deletion variants
# of the differing word instead of pair by pair; more deletions than this fall back to pairs.
_CROWDED = 16
_MAX_DELETIONS = 2
# Changed prompts beyond this share of the deck are cheaper to search from scratch.
_UPDATE_SHARE = 0.05

_PUNCT = re.compile(r"[^\w\s]")


def normal_prompt(prompt: str) -> str:
    """Case, punctuation and spacing folded away: "What's ROC?" and "whats roc" compare equal."""
    return " ".join(_PUNCT.sub(" ", prompt.casefold()).split())


def similar(a: str, b: str) -> bool:
    """The closeness test, symmetric (the texts are compared in a fixed order)."""
    if abs(len(a) - len(b)) > MAX_LENGTH_GAP:
        return False
    first, second = (a, b) if a <= b else (b, a)
    return difflib.SequenceMatcher(None, first, second).ratio() >= MIN_RATIO


def one_word_apart(a: Sequence[str], b: Sequence[str]) -> bool:
    """Word lists equal but for one word replaced, added or dropped."""
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) == 1
    if abs(len(a) - len(b)) != 1:
        return False
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    i = next((k for k, (x, y) in enumerate(zip(longer, shorter, strict=False)) if x != y), len(shorter))
    return list(longer[:i]) + list(longer[i + 1 :]) == list(shorter)


def related(a: str, b: str) -> bool:
    """The rule's relation between two normalised prompts."""
    return a == b or (one_word_apart(a.split(" "), b.split(" ")) and similar(a, b))


@dataclass(slots=True)
class DuplicateGraph:
    """The distinct normalised prompts of a deck and the related pairs among them."""

    keys: set[str] = field(default_factory=set)
    edges: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, keys: Iterable[str]) -> DuplicateGraph:
        """Every related pair, found through buckets of prompts that share all words but one."""
        graph = cls(set(keys))
        distinct = sorted(graph.keys)
        words = [k.split(" ") if k else [] for k in distinct]
        buckets: dict[str, list[int]] = {}
        for index, ws in enumerate(words):
            for i in range(len(ws)):
                buckets.setdefault(" ".join(ws[:i]) + "\x00" + " ".join(ws[i + 1 :]), []).append(index)
        for members in buckets.values():
            if len(members) > 1:
                for x, y in _bucket_pairs(members, distinct, words):
                    if similar(distinct[x], distinct[y]):
                        graph._link(distinct[x], distinct[y])
        for index, ws in enumerate(words):  # one word dropped from this prompt gives another prompt
            for i in range(len(ws)):
                shorter = " ".join(ws[:i] + ws[i + 1 :])
                if shorter in graph.keys and similar(distinct[index], shorter):
                    graph._link(distinct[index], shorter)
        return graph

    def update(self, keys: Iterable[str]) -> DuplicateGraph:
        """The graph of ``keys``: this one without the prompts that went, with the new ones probed."""
        current = set(keys)
        added = sorted(current - self.keys)
        if len(added) > max(1, _UPDATE_SHARE * len(current)):
            return DuplicateGraph.build(current)
        graph = DuplicateGraph(current)
        for key, others in self.edges.items():
            if key in current:
                kept = {o for o in others if o in current}
                if kept:
                    graph.edges[key] = kept
        profile = [(k, len(k), k.count(" ")) for k in current]
        for key in added:
            ws, length, gaps = key.split(" "), len(key), key.count(" ")
            for other, other_length, other_gaps in profile:
                if (
                    abs(other_length - length) <= MAX_LENGTH_GAP
                    and abs(other_gaps - gaps) <= 1
                    and other != key
                    and one_word_apart(ws, other.split(" "))
                    and similar(key, other)
                ):
                    graph._link(key, other)
        return graph

    def _link(self, a: str, b: str) -> None:
        self.edges.setdefault(a, set()).add(b)
        self.edges.setdefault(b, set()).add(a)

    def to_json(self) -> dict[str, object]:
        pairs = sorted([a, b] for a, others in self.edges.items() for b in others if a < b)
        return {"version": RULE_VERSION, "keys": sorted(self.keys), "pairs": pairs}

    @classmethod
    def from_json(cls, data: object) -> DuplicateGraph | None:
        """The stored graph, or None if it is of another version or malformed."""
        if not isinstance(data, dict) or data.get("version") != RULE_VERSION:
            return None
        keys, pairs = data.get("keys"), data.get("pairs")
        if not isinstance(keys, list) or not isinstance(pairs, list) or not all(isinstance(k, str) for k in keys):
            return None
        graph = cls(set(keys))
        for pair in pairs:
            if not (isinstance(pair, list) and len(pair) == 2 and all(p in graph.keys for p in pair)):
                return None
            graph._link(pair[0], pair[1])
        return graph


def _bucket_pairs(members: list[int], keys: list[str], words: list[list[str]]) -> Iterable[tuple[int, int]]:
    """Pairs of a bucket that can pass ``similar``: all of a small bucket, else those whose differing
    words share a deletion variant deep enough for the ratio (complete: see ``_deletions_needed``)."""
    if len(members) <= _CROWDED:
        yield from combinations(members, 2)
        return
    position = _differing_position(words[members[0]], words[members[1]])
    depth = {m: _deletions_needed(keys[m], words[m][position]) for m in members}
    if max(depth.values()) > _MAX_DELETIONS:
        for x, y in combinations(members, 2):
            if abs(len(keys[x]) - len(keys[y])) <= MAX_LENGTH_GAP:
                yield x, y
        return
    by_variant: dict[str, list[int]] = {}
    for m in members:
        for variant in _variants(words[m][position], depth[m]):
            by_variant.setdefault(variant, []).append(m)
    seen: set[tuple[int, int]] = set()
    for group in by_variant.values():
        for pair in combinations(group, 2):
            if pair not in seen:
                seen.add(pair)
                yield pair


def _differing_position(a: list[str], b: list[str]) -> int:
    return next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)


def _deletions_needed(key: str, word: str) -> int:
    """How many letters of ``word`` any partner in its bucket may lack, at most, and still be similar.

    Partners share everything but the word (``context`` characters), so the ratio's matches are at
    most the context plus the longest common subsequence of the two words: 2(context + lcs) >= 0.92
    (L + L') bounds ``lcs`` from below for each possible length of the partner's word.
    """
    context = len(key) - len(word)
    most = 0
    for other in range(max(1, len(word) - MAX_LENGTH_GAP), len(word) + MAX_LENGTH_GAP + 1):
        need = math.ceil(MIN_RATIO / 2 * (2 * context + len(word) + other) - context - 1e-9)
        if need <= min(len(word), other):
            most = max(most, len(word) - max(need, 0))
    return most


def _variants(word: str, depth: int) -> set[str]:
    """The word with up to ``depth`` letters deleted (all of them)."""
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def first_duplicates(prompts: Sequence[str], graph: DuplicateGraph) -> list[tuple[int, int]]:
    """(i, j) for each prompt i related to an earlier prompt j (the first such), in prompt order."""
    keys = [normal_prompt(p) for p in prompts]
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    found = []
    for index, key in enumerate(keys):
        earlier = [first[key]] + [first[k] for k in graph.edges.get(key, ()) if k in first]
        j = min(earlier)
        if j < index:
            found.append((index, j))
    return found


def duplicate_pairs(prompts: Sequence[str]) -> list[tuple[int, int]]:
    """``first_duplicates`` with a graph built from scratch."""
    return first_duplicates(prompts, DuplicateGraph.build(normal_prompt(p) for p in prompts))
