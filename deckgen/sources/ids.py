"""Readable note ids made from a prompt, unique against every id a deck has ever used."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Set

_STOP_WORDS = frozenset(
    {"a", "an", "the", "of", "is", "are", "what", "how", "why", "do", "does", "you", "your", "in", "to", "and"}
)
MAX_WORDS = 6


def slugify(text: str, max_words: int = MAX_WORDS) -> str:
    """``What is the kernel trick?`` → ``kernel-trick``: the prompt's content words, lowercase ASCII."""
    # Punctuation separates words before accents are folded (bias–variance → bias-variance, not
    # biasvariance); apostrophes join them (don't → dont).
    spaced = re.sub(r"[^\w]+", " ", re.sub(r"['’]", "", text))
    ascii_text = unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode()
    words = re.findall(r"[a-z0-9]+", ascii_text.lower())
    kept = [w for w in words if w not in _STOP_WORDS] or words
    return "-".join(kept[:max_words]) or "note"


def suggest_id(prompt: str) -> str:
    """The id a prompt would get in an empty deck."""
    return slugify(prompt)


def free_id(prompt: str, taken: Set[str]) -> str:
    """The prompt's slug, or the slug with the first free ``-2``, ``-3`` … suffix."""
    base = slugify(prompt)
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def assign_ids(prompts: Iterable[str], taken: Set[str]) -> list[str]:
    """A free id for each prompt in turn, none equal to ``taken`` or to an earlier one of the list.

    ``taken`` should hold every id and rename alias of the deck and every id of its lock, removed
    ones included: an id the lock remembers maps to a GUID that collections may still hold.
    """
    used = set(taken)
    out = []
    for prompt in prompts:
        new = free_id(prompt, used)
        used.add(new)
        out.append(new)
    return out
