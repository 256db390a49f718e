"""Near-identical prompts: which notes ask (almost) the same question, found without comparing every pair.

Prompts are compared normalised (case, punctuation and spacing folded away: ``normal_prompt``) and
as lists of words. Two normalised prompts are *related* when they are identical, or when they are
alike — at most 8 characters apart in length and a difflib ratio of at least 0.92 (``similar``) —
and their words differ by one of these edits (``one_word_apart``, ``two_words_apart``):

* one word: dropping one word from each leaves the same words in the same order (a word replaced or
  moved, e.g. two neighbours swapped), or dropping one word from the longer gives the shorter (a
  word added or dropped);
* two words: both have the same number of words and differ at exactly two positions, and at one of
  them the two words are spelling variants — equal once at most one letter is deleted from each (a
  typo, a plural, two letters swapped).

The relation depends on the two prompts alone, so the related pairs of a deck can be kept between
builds: ``DuplicateGraph.build`` finds them from scratch, ``DuplicateGraph.update`` probes only the
prompts that changed against the rest and gets exactly the same graph. ``first_duplicates`` turns a
graph into the rule's findings.

How ``build`` finds every related pair without comparing all of them: prompts one word apart share
the multiset of their words with one word dropped from each (or from the longer one only); prompts
two words apart agree at every position of two of the four classes of positions modulo 4. Prompts
sharing such a key are compared. A key shared by many prompts (a template such as "What is X?") is
narrowed first, by the spelling variants two words apart need and by the letters ``similar`` needs
the differing words to share, so that templated decks are not searched pair by pair. Word hashes
only group prompts: the pairs found do not depend on them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import combinations

# Bump when the relation changes: a stored graph of another version is never used.
RULE_VERSION = 2
MAX_LENGTH_GAP = 8
MIN_RATIO = 0.92
# A key shared by more prompts than this is narrowed by letters before its pairs are compared, unless
# the letter variants that takes would cost more than comparing the pairs (one comparison with
# ``similar`` costs about as much as this many variants).
_CROWDED = 16
_VARIANTS_PER_PAIR = 20
# More changed prompts than this are cheaper to search from scratch than to probe one by one.
_UPDATE_LIMIT = 40

_PUNCT = re.compile(r"[^\w\s]")

Pairs = set[tuple[int, int]]


# ``normal_prompt`` of an ASCII text, by one table lookup per byte (a build folds every prompt: 2x faster):
# each ASCII character as ``_PUNCT`` and ``casefold`` treat it.
_ASCII_FOLD = bytes(ord(" ") if _PUNCT.match(chr(i)) else ord(chr(i).casefold()) for i in range(128)) + bytes(128)


def normal_prompt(prompt: str) -> str:
    """Case, punctuation and spacing folded away: "What's ROC?" and "whats roc" compare equal."""
    if prompt.isascii():
        return " ".join(prompt.encode().translate(_ASCII_FOLD).decode().split())
    return " ".join(_PUNCT.sub(" ", prompt.casefold()).split())


def similar(a: str, b: str) -> bool:
    """The closeness test, symmetric (the texts are compared in a fixed order)."""
    if abs(len(a) - len(b)) > MAX_LENGTH_GAP:
        return False
    first, second = (a, b) if a <= b else (b, a)
    return difflib.SequenceMatcher(None, first, second).ratio() >= MIN_RATIO


def words_of(key: str) -> list[str]:
    """The words of a normalised prompt (none for the empty prompt)."""
    return key.split(" ") if key else []


def spelling_variants(a: str, b: str) -> bool:
    """Different words that are equal once at most one letter is deleted from each."""
    return a != b and abs(len(a) - len(b)) <= 1 and not _letter_drops(a).isdisjoint(_letter_drops(b))


def _letter_drops(word: str) -> set[str]:
    """The word, and the word without each one of its letters."""
    return {word, *(word[:i] + word[i + 1 :] for i in range(len(word)))}


def one_word_apart(a: Sequence[str], b: Sequence[str]) -> bool:
    """Word lists that are equal once one word is dropped from each, or from the longer one only.

    That is, their longest common subsequence misses at most one word of each. Past their common
    beginning and end, the rests differ in their first and in their last word, so one word each
    dropped can only be the first of one and the last of the other.
    """
    start, stop = 0, min(len(a), len(b))
    while start < stop and a[start] == b[start]:
        start += 1
    end = 0
    while end < stop - start and a[-1 - end] == b[-1 - end]:
        end += 1
    rest_a, rest_b = list(a[start : len(a) - end]), list(b[start : len(b) - end])
    if len(rest_a) <= 1 and len(rest_b) <= 1:
        return True
    if len(rest_a) != len(rest_b):
        return False
    return rest_a[1:] == rest_b[:-1] or rest_a[:-1] == rest_b[1:]


def two_words_apart(a: Sequence[str], b: Sequence[str]) -> bool:
    """Word lists of one length that differ at exactly two positions, one of them spelling variants."""
    if len(a) != len(b):
        return False
    differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
    return len(differ) == 2 and any(spelling_variants(a[i], b[i]) for i in differ)


def related(a: str, b: str) -> bool:
    """The rule's relation between two normalised prompts (see the module docstring)."""
    if a == b:
        return True
    words_a, words_b = words_of(a), words_of(b)
    if abs(len(words_a) - len(words_b)) > 1 or abs(len(a) - len(b)) > MAX_LENGTH_GAP:
        return False
    return (one_word_apart(words_a, words_b) or two_words_apart(words_a, words_b)) and similar(a, b)


@dataclass(slots=True)
class DuplicateGraph:
    """The distinct normalised prompts of a deck and the related pairs among them."""

    keys: set[str] = field(default_factory=set)
    edges: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, keys: Iterable[str]) -> DuplicateGraph:
        """Every related pair, found among the prompts that share a key (see the module docstring)."""
        graph = cls(set(keys))
        distinct = sorted(graph.keys)
        words = [words_of(k) for k in distinct]
        candidates: Pairs = set()
        _one_word_candidates(distinct, words, candidates)
        _two_word_candidates(distinct, words, candidates)
        for x, y in candidates:
            if related(distinct[x], distinct[y]):
                graph._link(distinct[x], distinct[y])
        return graph

    def update(self, keys: Iterable[str]) -> DuplicateGraph:
        """The graph of ``keys``: this one without the prompts that went, with the new ones probed."""
        current = set(keys)
        added = sorted(current - self.keys)
        if len(added) > _UPDATE_LIMIT:
            return DuplicateGraph.build(current)
        graph = DuplicateGraph(current)
        for key, others in self.edges.items():
            if key in current:
                kept = {o for o in others if o in current}
                if kept:
                    graph.edges[key] = kept
        if added:
            profile = [(k, len(k), k.count(" ")) for k in current]
            for key in added:
                for other in _partners(key, profile):
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


def _partners(key: str, profile: list[tuple[str, int, int]]) -> Iterator[str]:
    """The prompts of ``profile`` (prompt, length, spaces) related to ``key``, by one pass over them.

    A related prompt is within 8 characters and one word of ``key`` in length and contains all but at
    most two of its words, which rules out nearly all prompts before ``related`` is asked.
    """
    length, gaps = len(key), key.count(" ")
    distinct = set(words_of(key))
    need = len(distinct) - 2
    for other, other_length, other_gaps in profile:
        if (
            abs(other_length - length) <= MAX_LENGTH_GAP
            and abs(other_gaps - gaps) <= 1
            and other != key
            and (need <= 0 or sum(w in other for w in distinct) >= need)
            and related(key, other)
        ):
            yield other


def _add(found: Pairs, x: int, y: int) -> None:
    if x != y:
        found.add((x, y) if x < y else (y, x))


def _one_word_candidates(keys: list[str], words: list[list[str]], found: Pairs) -> None:
    """Pairs that may be one word apart: sharing the multiset of their words with one word dropped from
    each, or from one of them (kept as a sum of word hashes; a chance collision only adds a pair).

    An entry is ``index << shift | position + 1`` (0: no word dropped); a key's value is its first
    entry until a second one arrives (most keys have one).
    """
    shift = max((len(ws) for ws in words), default=0).bit_length() + 1
    shared: dict[int, int | list[int]] = {}
    for index, ws in enumerate(words):
        hashes = [hash(w) for w in ws]
        total = sum(hashes)
        entry = index << shift
        for key in (total, *(total - h for h in hashes)):
            group = shared.get(key)
            if group is None:
                shared[key] = entry
            elif isinstance(group, int):
                shared[key] = [group, entry]
            else:
                group.append(entry)
            entry += 1
    mask = (1 << shift) - 1
    for group in shared.values():
        if isinstance(group, int):
            continue
        whole = {e >> shift for e in group if not e & mask}
        dropped = {e >> shift: (e & mask) - 1 for e in group if e & mask}
        for x in whole:
            for y in dropped:
                _add(found, x, y)
        if len(dropped) > 1:
            _one_word_group(sorted(dropped), dropped, keys, words, found)


def _one_word_group(
    members: list[int], dropped: dict[int, int], keys: list[str], words: list[list[str]], found: Pairs
) -> None:
    """The pairs of prompts, equal once the word at ``dropped`` is dropped from each, that can pass
    ``similar``. Words dropped at one position sit between the same characters, so their longest
    common subsequence bounds the match (``LCS(PuQ, PvQ) = |P| + |Q| + LCS(u, v)``); words dropped at
    different positions (a word moved), or occurring twice in their prompt, are compared as multisets
    of letters."""
    texts = {m: words[m][dropped[m]] for m in members}
    depth = {m: _deletions_needed(len(keys[m]) - len(texts[m]), len(texts[m])) for m in members}
    sides = {m: dropped[m] if words[m].count(texts[m]) == 1 else -1 - m for m in members}
    at: dict[int, list[int]] = {}
    for m in members:
        at.setdefault(sides[m], []).append(m)
    for same in at.values():
        for x, y in _close_in_letters(same, keys, texts, depth, ordered=True):
            _add(found, x, y)
    if len(at) > 1:
        for x, y in _close_in_letters(members, keys, texts, depth, sides=sides):
            _add(found, x, y)


# Prompts two words apart touch at most two of these classes of positions (position modulo 4), so
# they agree at all positions of two others: each prompt is filed under every pair of classes.
_CLASSES = 4
_CLASS_PAIRS = list(combinations(range(_CLASSES), 2))


def _two_word_candidates(keys: list[str], words: list[list[str]], found: Pairs) -> None:
    """Pairs that may be two words apart: of one length and agreeing at the positions of two classes
    that leave at least two positions to differ."""
    for r, s in _CLASS_PAIRS:  # one pair of classes at a time: a sixth of the memory (~100 MB at 50k notes)
        filed: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for index, ws in enumerate(words):
            n = len(ws)
            if n - len(range(r, n, _CLASSES)) - len(range(s, n, _CLASSES)) >= 2:
                key = (n, (*ws[r::_CLASSES], *ws[s::_CLASSES]))
                group = filed.get(key)
                if group is None:
                    filed[key] = [index]
                else:
                    group.append(index)
        for (n, _), members in filed.items():
            if len(members) <= 1:
                continue
            if len(members) <= _CROWDED:
                for x, y in combinations(members, 2):
                    if _at_most_two_differ(words[x], words[y]):
                        _add(found, x, y)
            else:
                _anchored_pairs(members, [p for p in range(n) if p % _CLASSES not in (r, s)], keys, words, found)


def _at_most_two_differ(a: list[str], b: list[str]) -> bool:
    """Word lists of one length that differ at two positions or fewer (a cheap first test)."""
    return sum(x != y for x, y in zip(a, b, strict=True)) <= 2


def _anchored_pairs(
    members: list[int], positions: list[int], keys: list[str], words: list[list[str]], found: Pairs
) -> None:
    """In a crowded class, the pairs whose words at one of ``positions`` are spelling variants."""
    rests: _Rests | None = None
    for p in positions:
        by_word: dict[str, list[int]] = {}
        for m in members:
            by_word.setdefault(words[m][p], []).append(m)
        if len(by_word) < 2:
            continue
        by_drop: dict[str, list[str]] = {}
        for word in by_word:
            for drop in _letter_drops(word):
                by_drop.setdefault(drop, []).append(word)
        variants = {(min(a, b), max(a, b)) for group in by_drop.values() for a, b in combinations(group, 2)}
        for a, b in sorted(variants):
            if len(by_word[a]) * len(by_word[b]) <= _CROWDED * _CROWDED:
                for x in by_word[a]:
                    for y in by_word[b]:
                        if _at_most_two_differ(words[x], words[y]):
                            _add(found, x, y)
            else:
                rests = rests or _Rests(members, positions, words)
                rests.second_difference(p, (a, by_word[a]), (b, by_word[b]), keys, found)


class _Rests:
    """The prompts of a crowded class, each with one word left out, by a sum of word-and-position hashes.

    Prompts with words ``a`` and ``b`` at ``p`` that agree everywhere else but at one position ``q``
    have equal sums once ``q`` is left out and the hash of ``a`` at ``p`` is swapped for ``b``'s, so
    the prompts with the rarer word find their partners without going through the others.
    """

    def __init__(self, members: list[int], positions: list[int], words: list[list[str]]) -> None:
        self.positions, self.words = positions, words
        self.sums: dict[int, int] = {}
        self.without: dict[int, list[int]] = {}
        for m in members:
            total = self.sums[m] = sum(hash((s, w)) for s, w in enumerate(words[m]))
            for q in positions:
                self.without.setdefault(total - hash((q, words[m][q])), []).append(m)

    def second_difference(
        self, p: int, ours: tuple[str, list[int]], theirs: tuple[str, list[int]], keys: list[str], found: Pairs
    ) -> None:
        """Pairs of ``ours`` x ``theirs`` that differ at one more position and can pass ``similar``."""
        (few_word, few), (many_word, _) = (ours, theirs) if len(ours[1]) <= len(theirs[1]) else (theirs, ours)
        swap = hash((p, many_word)) - hash((p, few_word))
        probes: dict[tuple[int, int], list[int]] = {}
        for y in few:
            for q in self.positions:
                if q != p:
                    probes.setdefault((q, self.sums[y] - hash((q, self.words[y][q])) + swap), []).append(y)
        for (q, rest), ys in probes.items():
            xs = [x for x in self.without.get(rest, ()) if self.words[x][p] == many_word]
            if xs:
                members = sorted({*xs, *ys})
                sides = {m: int(self.words[m][p] == many_word) for m in members}
                lo, hi = min(p, q), max(p, q)
                spans = {m: " ".join(self.words[m][lo : hi + 1]) for m in members}
                depth = {m: _deletions_needed(len(keys[m]) - len(spans[m]), len(spans[m])) for m in members}
                for x, y in _close_in_letters(members, keys, spans, depth, ordered=True, sides=sides):
                    _add(found, x, y)


def _close_in_letters(
    members: list[int],
    keys: list[str],
    texts: dict[int, str],
    depth: dict[int, int],
    *,
    ordered: bool = False,
    sides: dict[int, int] | None = None,
) -> Iterator[tuple[int, int]]:
    """Pairs of prompts, equal but for the letters ``texts``, that can pass ``similar``: all pairs of a
    small group (or of one whose variants would cost more), else those whose texts keep common letters
    once each has lost at most ``depth`` of them (complete when ``depth`` comes from
    ``_deletions_needed``): a common subsequence if ``ordered`` (the texts sit between the same
    characters), else a common multiset. With ``sides``, only pairs of members on different sides."""
    pairs = len(members) * (len(members) - 1) // 2
    if len(members) <= _CROWDED or _variant_count(members, texts, depth) > _VARIANTS_PER_PAIR * pairs:
        for x, y in combinations(members, 2):
            if (sides is None or sides[x] != sides[y]) and abs(len(keys[x]) - len(keys[y])) <= MAX_LENGTH_GAP:
                yield x, y
        return
    by_variant: dict[str, dict[int, list[int]]] = {}
    for m in members:
        text = texts[m] if ordered else "".join(sorted(texts[m]))
        for variant in _variants(text, depth[m]):
            by_variant.setdefault(variant, {}).setdefault(m if sides is None else sides[m], []).append(m)
    seen: set[tuple[int, int]] = set()
    for group in by_variant.values():
        for one, other in combinations(group.values(), 2):
            for x in one:
                for y in other:
                    pair = (x, y) if x < y else (y, x)
                    if pair not in seen:
                        seen.add(pair)
                        yield pair


def _variant_count(members: list[int], texts: dict[int, str], depth: dict[int, int]) -> int:
    """At most how many variants ``_variants`` gives for these members' texts and depths."""
    return sum(sum(math.comb(len(texts[m]), k) for k in range(min(depth[m], len(texts[m])) + 1)) for m in members)


def _deletions_needed(shared: int, free: int) -> int:
    """How many of a prompt's ``free`` letters any partner may lack, at most, and still be similar.

    The two prompts have ``shared`` characters in common and differ in their free letters (``free``
    here, ``other`` in the partner), so the ratio's matches, at most the longest common subsequence,
    are at most ``shared`` plus the free letters in common (``common``: as a subsequence if the free
    letters sit between the same characters, LCS(PuQ, PvQ) = |P| + |Q| + LCS(u, v); as a multiset in
    any case). 2(shared + common) >= 0.92 (length + partner's length) bounds ``common`` from below for
    each length ``other`` that keeps the prompts within 8 characters.
    """
    most = 0
    for other in range(max(1, free - MAX_LENGTH_GAP), free + MAX_LENGTH_GAP + 1):
        need = math.ceil(MIN_RATIO / 2 * (2 * shared + free + other) - shared - 1e-9)
        if need <= min(free, other):
            most = max(most, free - max(need, 0))
    return most


def _variants(letters: str, depth: int) -> set[str]:
    """The letters with up to ``depth`` of them deleted (all ways)."""
    found, frontier = {letters}, {letters}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def first_duplicates(
    prompts: Sequence[str], graph: DuplicateGraph, keys: Sequence[str] | None = None
) -> list[tuple[int, int]]:
    """(i, j) for each prompt i related to an earlier prompt j (the first such), in prompt order.

    ``keys``: the prompts' ``normal_prompt``s, when the caller has them already.
    """
    keys = [normal_prompt(p) for p in prompts] if keys is None else keys
    first: dict[str, int] = {}
    for index, key in enumerate(keys):
        first.setdefault(key, index)
    found = []
    edges = graph.edges
    for index, key in enumerate(keys):
        j = first[key]
        related = edges.get(key)
        if related:  # (most prompts have no near-duplicate)
            j = min([j, *(first[k] for k in related if k in first)])
        if j < index:
            found.append((index, j))
    return found


def duplicate_pairs(prompts: Sequence[str]) -> list[tuple[int, int]]:
    """``first_duplicates`` with a graph built from scratch."""
    return first_duplicates(prompts, DuplicateGraph.build(normal_prompt(p) for p in prompts))
