"""Recall and speed of the near-duplicate prompt search (not part of the test suite).

    python benchmarks/bench_duplicates.py            # recall on 3000 prompts, speed at 10k and 50k

Recall is measured against exhaustive pairwise similarity: every pair of distinct normalised prompts
whose difflib ratio is at least 0.92 and whose lengths differ by at most 8 characters (the rule's
closeness test, with no restriction on how the two differ). The generated set mixes realistic
question shapes with the edits authors make to a copy of a prompt: a typo, a word replaced, added
or dropped, two words changed, reordered words, punctuation and case.
"""

from __future__ import annotations

import argparse
import difflib
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth import _prompt

from deckgen.sources.duplicates import MAX_LENGTH_GAP, MIN_RATIO, DuplicateGraph, normal_prompt, similar


def _edit(rng: random.Random, prompt: str) -> str:
    words = prompt.rstrip("?").split()
    i = rng.randrange(len(words))
    kind = rng.randrange(7)
    if kind == 0:  # a typo
        w = words[i]
        j = rng.randrange(len(w))
        words[i] = w[:j] + w[j + 1 :] if len(w) > 3 else w + "s"
    elif kind == 1:  # a word replaced
        words[i] = rng.choice(["model", "method", "approach", "estimator", "metric"])
    elif kind == 2:  # a word added
        words.insert(i, rng.choice(["the", "a", "usually", "exactly", "really"]))
    elif kind == 3 and len(words) > 3:  # a word dropped
        del words[i]
    elif kind == 4 and len(words) > 3:  # two words changed
        j = (i + 2) % len(words)
        words[i], words[j] = words[i] + "s", "the" if words[j] != "the" else "a"
    elif kind == 5 and len(words) > 3:  # two neighbouring words swapped
        j = min(i + 1, len(words) - 1)
        words[i], words[j] = words[j], words[i]
    else:  # punctuation and case
        return prompt.upper().replace("?", " ?!")
    return " ".join(words) + "?"


def generate(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    prompts = [_prompt(random.Random(f"{seed}:{i}"), False) for i in range(n)]
    for i in rng.sample(range(n), n // 10):  # one in ten prompts gets an edited twin
        prompts.append(_edit(rng, prompts[i]))
    rng.shuffle(prompts)
    return prompts


def exhaustive(keys: list[str]) -> set[tuple[str, str]]:
    """Every pair of ``keys`` that ``similar`` accepts, (a, b) with a < b. Each pair within 8
    characters in length is compared; difflib's cheap upper bounds of the ratio rule most out before
    ``similar`` is asked (the same pairs as asking it for every pair, in a fraction of the time)."""
    by_length = sorted(keys, key=len)
    matcher = difflib.SequenceMatcher(None)
    found, start = set(), 0
    for i, b in enumerate(by_length):
        matcher.set_seq2(b)
        while len(by_length[start]) < len(b) - MAX_LENGTH_GAP:
            start += 1
        for a in by_length[start:i]:
            matcher.set_seq1(a)
            if matcher.real_quick_ratio() >= MIN_RATIO and matcher.quick_ratio() >= MIN_RATIO and similar(a, b):
                found.add((a, b) if a < b else (b, a))
    return found


def recall(n: int, seed: int = 0) -> tuple[int, int, int]:
    """(pairs the exhaustive comparison finds, pairs the graph finds among them, graph pairs not in it)."""
    keys = sorted({normal_prompt(p) for p in generate(n, seed)})
    exhaustive_pairs = exhaustive(keys)
    graph = DuplicateGraph.build(keys)
    found = {(a, b) for a, others in graph.edges.items() for b in others if a < b}
    return len(exhaustive_pairs), len(found & exhaustive_pairs), len(found - exhaustive_pairs)


def speed(n: int, runs: int = 3) -> tuple[float, float]:
    """Median seconds of a search from scratch and of an update after one prompt changed."""
    keys = [normal_prompt(p) for p in generate(n, seed=1)]
    cold, warm = [], []
    for r in range(runs):
        start = time.perf_counter()
        graph = DuplicateGraph.build(keys)
        cold.append(time.perf_counter() - start)
        changed = list(keys)
        changed[r] += " in practice"
        start = time.perf_counter()
        graph.update(changed)
        warm.append(time.perf_counter() - start)
    return statistics.median(cold), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recall-size", type=int, default=3000)
    parser.add_argument("--seeds", default="0", help="generated sets to measure recall on (comma-separated)")
    parser.add_argument("--sizes", default="10000,50000")
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",") if s):
        total, hit, extra = recall(args.recall_size, seed)
        print(
            f"recall on {args.recall_size} prompts (+10 % edited twins, seed {seed}): {hit}/{total} = "
            f"{hit / max(total, 1):.1%}; pairs found that the exhaustive comparison does not: {extra}"
        )
    for n in (int(s) for s in args.sizes.split(",") if s):
        cold, warm = speed(n)
        print(f"{n:>6} prompts: search from scratch {cold:.2f} s, update after one changed prompt {warm * 1000:.0f} ms")


if __name__ == "__main__":
    main()
