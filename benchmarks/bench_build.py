"""Benchmark deckgen against the bare-genanki floor on synthetic decks (not part of the test suite).

    python benchmarks/bench_build.py                 # 1k and 10k notes, median of 3 runs
    python benchmarks/bench_build.py --large         # also 50k
    python benchmarks/bench_build.py --json out.json # the table's numbers as JSON too

For each size it generates a source tree (benchmarks/synth.py) in a temp folder and times, as
separate processes (so interpreter start-up and imports count the same for everyone):

- floor: ``markdown.markdown`` of every body (each answer and extra, with deckgen's extensions),
  one call each, serially, then genanki writing those notes: the naive pipeline;
- cold: ``deckgen build`` with no cache and no lock;
- warm: ``deckgen build`` again after editing one note (a different edit each run);
- check: ``deckgen check`` (reusing the build's cache, as after a build) and with ``--no-cache``;
- peak memory of the cold build: the largest resident set of one process (kernel's ``maxrss``) and
  the largest sum of proportional set sizes (PSS) over the build and its workers, sampled.

It then rebuilds without any cache and checks the package is byte-identical to the warm one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synth import edit_one_note, generate  # noqa: E402

DECKGEN = [sys.executable, "-m", "deckgen"]
EPOCH = "1764000000"
TARGETS = {
    "cold/floor @10k": 1.0,
    "warm/floor @10k": 0.1,
    "cold 50k/10k": 5.5,
    "peak PSS @50k (MB)": 400,
    "peak RSS of one process @50k (MB)": 400,
    "check @10k (s)": 1.5,
}


@dataclass
class Row:
    notes: int
    floor: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    check: list[float] = field(default_factory=list)
    check_no_cache: list[float] = field(default_factory=list)
    maxrss_mb: float = 0.0
    pss_mb: float = 0.0
    identical: bool = False

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values) if values else float("nan")


# --- the floor: what a naive pipeline does --------------------------------------------------------


def floor_main(bodies_path: Path, out: Path) -> None:
    """Run in its own process: render every body with bare ``markdown.markdown``, write with genanki."""
    import genanki
    import markdown

    data = json.loads(bodies_path.read_text(encoding="utf-8"))
    extensions, configs = data["extensions"], data["configs"]
    model = genanki.Model(
        1607392319,
        "Floor",
        fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}],
        templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}{{Extra}}"}],
    )
    deck = genanki.Deck(2059400110, "Floor")
    for prompt, answer, extra in data["notes"]:
        back = markdown.markdown(answer, extensions=extensions, extension_configs=configs)
        more = markdown.markdown(extra, extensions=extensions, extension_configs=configs) if extra else ""
        deck.add_note(genanki.Note(model=model, fields=[prompt, back, more]))
    genanki.Package(deck).write_to_file(str(out), timestamp=float(EPOCH))


def dump_bodies(source: Path, dest: Path) -> None:
    """The floor's input (untimed): every note's prompt and bodies, plus deckgen's extension settings."""
    from deckgen.build.pipeline import read_sources
    from deckgen.render.markdown import EXTENSION_CONFIGS, EXTENSIONS
    from deckgen.sources.parse import parse_deck

    config, files, _ = read_sources(source)
    deck, _ = parse_deck(config, source, files)
    notes = [[n.prompt, n.answer.text, n.extra.text if n.extra else None] for n in deck.notes()]
    payload = {"extensions": list(EXTENSIONS), "configs": EXTENSION_CONFIGS, "notes": notes}
    dest.write_text(json.dumps(payload), encoding="utf-8")


# --- running and measuring ---------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return found


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(cmd: list[str], *, memory: bool = False, ok: tuple[int, ...] = (0,)) -> tuple[float, float, float]:
    """Wall time (s), peak single-process RSS (MB) and peak summed PSS of the process tree (MB)."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    env.pop("NO_COLOR", None)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_pss = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak_pss
        while not stop.is_set():
            peak_pss = max(peak_pss, sum(_pss_kb(p) for p in _descendants(proc.pid)))
            stop.wait(0.02)

    sampler = threading.Thread(target=sample, daemon=True) if memory and Path("/proc").is_dir() else None
    if sampler:
        sampler.start()
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    if sampler:
        sampler.join()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{stderr.decode(errors='replace')[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024, peak_pss / 1024


def bench_size(n: int, runs: int, work: Path, log: bool) -> Row:
    row = Row(n)
    source, out = work / "source", work / "build"
    say = print if log else (lambda *a, **k: None)
    t = time.perf_counter()
    generate(source, n)
    bodies = work / "bodies.json"
    dump_bodies(source, bodies)
    say(f"[{n} notes] generated in {time.perf_counter() - t:.1f}s")

    for _ in range(runs):
        row.floor.append(run([sys.executable, __file__, "--floor", str(bodies), str(work / "floor.apkg")])[0])
    say(f"[{n} notes] floor  {row.floor}")

    build = [*DECKGEN, "build", str(source), "-o", str(out), "-q"]
    for _ in range(runs):
        shutil.rmtree(out, ignore_errors=True)
        (source / "deckgen.lock").unlink(missing_ok=True)
        elapsed, maxrss, pss = run(build, memory=True)
        row.cold.append(elapsed)
        row.maxrss_mb, row.pss_mb = max(row.maxrss_mb, maxrss), max(row.pss_mb, pss)
    say(f"[{n} notes] cold   {row.cold}  maxrss {row.maxrss_mb:.0f} MB  pss {row.pss_mb:.0f} MB")

    for r in range(runs):
        edit_one_note(source, r)
        row.warm.append(run(build)[0])
    say(f"[{n} notes] warm   {row.warm}")

    check = [*DECKGEN, "check", str(source), "-o", str(out), "-q"]
    for _ in range(runs):
        row.check.append(run(check, ok=(0, 1))[0])
        row.check_no_cache.append(run([*check, "--no-cache"], ok=(0, 1))[0])
    say(f"[{n} notes] check  {row.check}  no cache {row.check_no_cache}")

    # The cache must never change the output: rebuild the same sources and lock without it.
    fresh = work / "fresh"
    run([*DECKGEN, "build", str(source), "-o", str(fresh), "-q", "--no-cache", "--locked"])
    (warm_apkg,) = out.glob("*.apkg")
    row.identical = warm_apkg.read_bytes() == (fresh / warm_apkg.name).read_bytes()
    return row


def ratios(rows: dict[int, Row]) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, row in rows.items():
        k = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        out[f"cold/floor @{k}"] = row.median("cold") / row.median("floor")
        out[f"warm/floor @{k}"] = row.median("warm") / row.median("floor")
    if 10_000 in rows and 50_000 in rows:
        for name in ("floor", "cold", "warm", "check"):
            out[f"{name} 50k/10k"] = rows[50_000].median(name) / rows[10_000].median(name)
    if 10_000 in rows:
        out["check @10k (s)"] = rows[10_000].median("check")
        out["check --no-cache @10k (s)"] = rows[10_000].median("check_no_cache")
    if 50_000 in rows:
        out["peak PSS @50k (MB)"] = rows[50_000].pss_mb
        out["peak RSS of one process @50k (MB)"] = rows[50_000].maxrss_mb
    return out


def table(rows: dict[int, Row], runs: int) -> str:
    head = (
        f"{'notes':>6} | {'floor':>7} | {'cold':>7} | {'warm':>7} | {'check':>7} | {'check*':>7} "
        f"| {'RSS':>6} | {'PSS':>6} | {'cold/floor':>10} | {'warm/floor':>10} | same bytes"
    )
    lines = [head, "-" * len(head)]
    for n, r in rows.items():
        lines.append(
            f"{n:>6} | {r.median('floor'):6.2f}s | {r.median('cold'):6.2f}s | {r.median('warm'):6.2f}s "
            f"| {r.median('check'):6.2f}s | {r.median('check_no_cache'):6.2f}s | {r.maxrss_mb:4.0f}MB "
            f"| {r.pss_mb:4.0f}MB | {r.median('cold') / r.median('floor'):10.3f} "
            f"| {r.median('warm') / r.median('floor'):10.3f} | {'yes' if r.identical else 'NO'}"
        )
    lines.append(
        f"median of {runs} runs; check* = check --no-cache; RSS = largest process (maxrss), "
        "PSS = build + workers, summed (peak of 20 ms samples)"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated note counts (default 1000,10000)")
    parser.add_argument("--large", action="store_true", help="also 50000 notes (a few minutes more)")
    parser.add_argument("--runs", type=int, default=3, help="runs per measurement, median reported (default 3)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the generated trees (printed)")
    parser.add_argument("--quiet", action="store_true", help="only the table")
    parser.add_argument("--floor", nargs=2, type=Path, metavar=("BODIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor_main(*args.floor)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([50_000] if args.large else [])
    started = time.perf_counter()
    rows: dict[int, Row] = {}
    base = Path(tempfile.mkdtemp(prefix="deckgen-bench-"))
    try:
        for n in sizes:
            work = base / str(n)
            work.mkdir()
            rows[n] = bench_size(n, args.runs, work, not args.quiet)
    finally:
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    found = ratios(rows)
    print(table(rows, args.runs))
    print()
    for name, value in found.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  (target ≤ {target}: {'met' if value <= target else 'MISSED'})"
        print(f"{name:<36} {value:8.3f}{verdict}")
    print(f"\n{os.cpu_count()} cores, Python {platform.python_version()}, {time.perf_counter() - started:.0f}s total")
    if args.json:
        from deckgen import __version__

        medians = {
            n: {k: r.median(k) for k in ("floor", "cold", "warm", "check", "check_no_cache")} for n, r in rows.items()
        }
        result = {
            "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "deckgen": __version__,
            "runs": args.runs,
            "sizes": {str(n): asdict(r) | {"median": medians[n]} for n, r in rows.items()},
            "ratios": found,
            "targets": TARGETS,
        }
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
