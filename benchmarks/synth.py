"""Synthetic deckgen sources of N notes with a realistic mix of content, for benchmarks.

Deterministic: the same (n, seed) always gives the same bytes, and note ``i`` does not depend on
how many notes are generated, so a 10k tree is the first 10k notes of a 50k tree. Mix per note:
prose with inline markup and inline math (always), lists, fenced code, display math, pipe
tables, images (a pool of small PNG/SVG files), an ``extra`` section, cloze and reverse notes.
"""

from __future__ import annotations

import random
import re
import struct
import zlib
from pathlib import Path

NOTES_PER_FILE = 250
IMAGE_POOL = 24

WORDS = (  # noqa: SIM905
    "model loss gradient batch epoch feature label sample variance bias kernel margin tree forest boost "
    "ensemble layer neuron weight activation dropout norm embedding token attention head encoder decoder "
    "prior posterior likelihood estimator sampler chain matrix vector tensor rank eigenvalue projection "
    "cluster centroid distance metric precision recall threshold curve score calibration query index "
    "shard replica cache latency throughput pipeline schema join window stream partition lag drift "
    "baseline ablation benchmark split fold seed trial hypothesis effect interval quantile median mean "
    "entropy divergence margin softmax logit temperature scheduler optimizer momentum decay warmup step"
).split()
VERBS = "change affect bound reduce increase stabilise explain predict control limit measure".split()  # noqa: SIM905
ADJ = "sparse dense noisy robust convex stochastic linear deep shallow biased unbiased calibrated".split()  # noqa: SIM905
LANGS = ("python", "sql", "bash", "javascript")
TOPICS = ("evaluation", "optimization", "probability", "systems", "data", "deep-learning", "classical")


def _sentence(rng: random.Random, words: int) -> str:
    out = []
    for k in range(words):
        w = rng.choice(WORDS)
        roll = rng.random()
        if roll < 0.04:
            w = f"**{w}**"
        elif roll < 0.07:
            w = f"*{w}*"
        elif roll < 0.09:
            w = f"`{w}_{k}`"
        elif roll < 0.12:
            w = f"${rng.choice('xyzw')}_{k} = \\frac{{{rng.randint(1, 9)}}}{{n}}$"
        out.append(w)
    out[0] = out[0].capitalize()
    return " ".join(out) + "."


def _prose(rng: random.Random, lo: int, hi: int) -> str:
    total, parts = rng.randint(lo, hi), []
    while total > 0:
        n = min(total, rng.randint(8, 16))
        parts.append(_sentence(rng, n))
        total -= n
    return " ".join(parts)


def _list(rng: random.Random) -> str:
    marker = rng.choice(("-", "1."))
    return "\n".join(f"{marker} {_sentence(rng, rng.randint(3, 7))}" for _ in range(rng.randint(2, 5)))


def _code(rng: random.Random) -> str:
    lang = rng.choice(LANGS)
    body = {
        "python": lambda i: f"    total += {rng.choice(WORDS)}[{i}] * weights.get('{rng.choice(WORDS)}', 0.5)",
        "sql": lambda i: f"  AND {rng.choice(WORDS)}_{i} >= {rng.randint(1, 999)}",
        "bash": lambda i: f"deckgen build source -o /tmp/out{i} --{rng.choice(('locked', 'dry-run'))}",
        "javascript": lambda i: f"  const {rng.choice(WORDS)}{i} = items.map((x) => x * {rng.randint(2, 9)});",
    }[lang]
    head = {
        "python": "def score(weights):",
        "sql": "SELECT * FROM runs WHERE 1 = 1",
        "bash": "set -eu",
        "javascript": "function f(items) {",
    }[lang]
    lines = [head] + [body(i) for i in range(rng.randint(3, 9))]
    return f"```{lang}\n" + "\n".join(lines) + "\n```"


def _display_math(rng: random.Random) -> str:
    a, b = rng.choice("xyzw"), rng.choice("abcd")
    return f"$$\\sum_{{i=1}}^{{n}} {a}_i^2 \\le \\frac{{{b}^2}}{{2\\sigma^2}} + \\lambda \\lVert {a} \\rVert_1$$"


def _table(rng: random.Random) -> str:
    cols = rng.randint(2, 4)
    rows = [" | ".join(rng.choice(WORDS) for _ in range(cols)) for _ in range(rng.randint(2, 5))]
    head = " | ".join(w.capitalize() for w in rng.sample(WORDS, cols))
    return "\n".join([f"| {head} |", "|" + "---|" * cols] + [f"| {r} |" for r in rows])


PROMPTS = (  # question shapes of a real deck, filled with random words: distinct, not numbered
    "What is the role of the {a} {w} in {w} {w}?",
    "How does {w} {v} the {w} of a {a} {w}?",
    "Why would you use {w} {w} instead of a {a} {w}?",
    "When does a {a} {w} {v} the {w}?",
    "What is the difference between {w} {w} and {a} {w}?",
    "How do you choose the {w} of a {a} {w} {w}?",
    "Which {w} should {v} a {a} {w} during {w}?",
    "What goes wrong if the {w} is {a} in {w} {w}?",
)


def _prompt(rng: random.Random, cloze: bool) -> str:
    if cloze:
        return " ".join(rng.choice(WORDS) for _ in range(4)).capitalize()
    shape = rng.choice(PROMPTS).replace("?", " for {w} {w}?")  # a qualifier keeps prompts apart
    return re.sub(r"\{([awv])\}", lambda m: rng.choice({"a": ADJ, "w": WORDS, "v": VERBS}[m.group(1)]), shape)


def note_text(i: int, seed: int = 0, note_id: str | None = None) -> str:
    """The Markdown of note ``i`` (heading to last line), independent of every other note."""
    rng = random.Random(f"{seed}:{i}")
    cloze = rng.random() < 0.05
    prompt = _prompt(rng, cloze)
    meta = [f"<!-- id: {note_id or f'n{i:06d}'} -->"]
    if rng.random() < 0.3:
        meta.append(f"<!-- tags: topic::{rng.choice(TOPICS)}::{rng.choice(WORDS)} -->")
    if rng.random() < 0.1:
        meta.append(f"<!-- source: {rng.choice(WORDS).capitalize()} et al. ({rng.randint(1990, 2024)}) -->")
    if cloze:
        meta.append("<!-- cloze -->")
    elif rng.random() < 0.03:
        meta.append("<!-- reverse -->")
    blocks = [_prose(rng, 15, 45)]
    if cloze:
        blocks[0] = (
            f"The {rng.choice(WORDS)} is {{{{c1::{rng.choice(WORDS)}}}}} and the {{{{c2::{rng.choice(WORDS)}}}}}."
        )
    if rng.random() < 0.35:
        blocks.append(_list(rng))
    if rng.random() < 0.25:
        blocks.append(_code(rng))
    if rng.random() < 0.25:
        blocks.append(_display_math(rng))
    if rng.random() < 0.05:
        k = rng.randrange(IMAGE_POOL)
        ext = "svg" if k % 2 else "png"
        blocks.append(f"![figure {k}](images/fig-{k:02d}.{ext})")
    if rng.random() < 0.5:
        blocks += ["<!-- extra -->", _prose(rng, 20, 60)]
        if rng.random() < 0.3:
            blocks.append(_table(rng))
    return f"## {prompt}\n" + "\n".join(meta) + "\n\n" + "\n\n".join(blocks) + "\n"


def _png(k: int) -> bytes:
    """A tiny valid 8×8 grey PNG, different for each k."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + bytes([(k * 9 + x * 3 + y) % 256 for x in range(8)]) for y in range(8))
    ihdr = struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _svg(k: int) -> bytes:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20">'
        f'<rect width="{10 + k}" height="20" fill="#{k * 10:02x}6699"/></svg>\n'
    ).encode()


def generate(root: Path, n: int, seed: int = 0) -> Path:
    """Write a source tree of ``n`` notes under ``root`` (created); returns it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "deckgen.toml").write_text(
        'name = "Synthetic"\nuuid = "0b7d3f4e-8c1a-4e2b-a6f9-5d2c8e1b7a30"\noutput = "synthetic.apkg"\n',
        encoding="utf-8",
    )
    images = root / "images"
    images.mkdir(exist_ok=True)
    for k in range(IMAGE_POOL):
        if k % 2:
            (images / f"fig-{k:02d}.svg").write_bytes(_svg(k))
        else:
            (images / f"fig-{k:02d}.png").write_bytes(_png(k))
    for f, start in enumerate(range(0, n, NOTES_PER_FILE)):
        topic = TOPICS[f % len(TOPICS)]
        front = f"---\ndeck: Part {f:03d}\nkind: question\ntags: [topic::{topic}]\norder: {f}\n---\n\n"
        intro = f"Synthetic part {f} about *{topic}*.\n\n"
        notes = "\n".join(note_text(i, seed) for i in range(start, min(n, start + NOTES_PER_FILE)))
        (root / f"part-{f:03d}.md").write_text(front + intro + notes, encoding="utf-8")
    return root


EDIT_KINDS = ("answer", "prompt", "tags", "rename", "add", "remove")


def _note_span(text: str, note_id: str) -> tuple[int, int]:
    """(start, end) of the note whose id comment names ``note_id``: its heading to the next heading."""
    at = text.index(f"<!-- id: {note_id} -->")
    start = text.rindex("\n## ", 0, at) + 1
    end = text.find("\n## ", at)
    return start, len(text) if end < 0 else end + 1


def edit_one_note(root: Path, run: int, kind: str = "answer") -> Path:
    """One edit of ``kind`` as an author would make it; each (kind, run) edits a note of its own."""
    slot = EDIT_KINDS.index(kind) * 4 + run % 4
    path = sorted(root.glob("part-*.md"))[slot % 2]
    text = path.read_text(encoding="utf-8")
    first = int(re.search(r"<!-- id: n(\d{6})", text).group(1))  # type: ignore[union-attr]
    note_id = f"n{first + 5 + 9 * slot:06d}"
    start, end = _note_span(text, note_id)
    note = text[start:end]
    if kind == "answer":
        at = note.index("\n\n") + 2
        note = note[:at] + f"Edited {run}: " + note[at:]
    elif kind == "prompt":
        heading, rest = note.split("\n", 1)
        note = heading.replace("?", " in practice?") if "?" in heading else heading + " revised"
        note += "\n" + rest
    elif kind == "tags":
        if "<!-- tags: " in note:
            note = note.replace("<!-- tags: ", f"<!-- tags: edited::r{run} ", 1)
        else:
            note = note.replace(" -->\n", f" -->\n<!-- tags: edited::r{run} -->\n", 1)
    elif kind == "rename":
        note = note.replace(f"<!-- id: {note_id} -->", f"<!-- id: {note_id}-renamed; was: {note_id} -->")
    elif kind == "add":
        note = note + note_text(10_000_000 + run, note_id=f"added-{run}") + "\n"
    elif kind == "remove":
        note = ""
    else:
        raise ValueError(f"unknown edit kind {kind!r}")
    path.write_text(text[:start] + note + text[end:], encoding="utf-8")
    return path
