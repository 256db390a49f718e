"""Benchmark deckgen against a careful serial baseline on synthetic decks (not part of the test suite).

    python benchmarks/bench_build.py                 # 1k and 10k notes, median of 3 runs
    python benchmarks/bench_build.py --large         # also 50k
    python benchmarks/bench_build.py --json out.json # the numbers as JSON too

For each size it generates a source tree (benchmarks/synth.py: distinct, realistic prompts) in a
temp folder and times, as separate processes (interpreter start-up and imports count the same for
everyone):

- floor (the reference): what a careful engineer's serial script does — ONE reused
  ``markdown.Markdown`` with deckgen's extension set (tables, footnotes, attr_list, def_list, abbr,
  sane_lists, pymdownx superfences/highlight/arithmatex), ``reset()`` + ``convert()`` of every
  prompt, answer and extra, then genanki writing those notes. Its parts (imports, render, package)
  are timed inside the process;
- naive floor (a second, labelled column): ``markdown.markdown`` per answer/extra, which builds a new
  converter each time (prompts not rendered) — the baseline of earlier versions, slower than necessary;
- cold: ``deckgen build`` with no cache and no lock;
- warm: ``deckgen build`` after ONE edit of each kind — answer, prompt, tags, id rename, a new note,
  a removed note (a different note each run) — with where the time went (``DECKGEN_TIMINGS``);
- check: ``deckgen check`` after a build (reusing its cache) and with ``--no-cache``;
- peak memory of a cold build: the largest resident set of one process (kernel's ``maxrss``) and
  the largest sum of proportional set sizes (PSS) over the build and its workers, sampled every 20 ms
  — in a cold build of its own, before the rounds: the sampler costs a sixth of a core, and the timed
  runs (the floor's included) run without it.

Runs go in rounds (floor, naive floor, cold, each warm edit, check), so that a floor run and the deckgen
runs compared with it are minutes apart at most: this machine's speed drifts a lot within a session.

Finally it rebuilds the edited sources with ``--no-cache --locked`` into a fresh folder and checks
the package is byte-identical to the warm one.
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

from synth import EDIT_KINDS, edit_one_note, generate  # noqa: E402

DECKGEN = [sys.executable, "-m", "deckgen"]
EPOCH = "1764000000"
TARGETS = {  # issue: cold ≤ 0.8× and every one-note edit ≤ 0.1× of the careful floor at 10k
    "cold/floor @10k": 0.8,
    **{f"warm {kind}/floor @10k": 0.1 for kind in EDIT_KINDS},
    "check/floor @10k": 0.05,
    "cold 50k/10k": 5.2,
    "peak PSS @50k (MB)": 400,
    "peak RSS of one process @50k (MB)": 400,
}
PHASES = ("startup", "read", "parse", "render", "checks", "cache", "lock", "package")


@dataclass
class Row:
    notes: int
    floor: list[float] = field(default_factory=list)
    floor_parts: list[dict[str, float]] = field(default_factory=list)
    naive: list[float] = field(default_factory=list)
    cold: list[float] = field(default_factory=list)
    warm: dict[str, list[float]] = field(default_factory=dict)
    warm_phases: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    check: list[float] = field(default_factory=list)
    check_no_cache: list[float] = field(default_factory=list)
    maxrss_mb: float = 0.0
    pss_mb: float = 0.0
    identical: bool = False

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values) if values else float("nan")

    def warm_median(self, kind: str) -> float:
        return statistics.median(self.warm[kind])

    def part(self, runs: list[dict[str, float]], name: str) -> float:
        return statistics.median([r.get(name, 0.0) for r in runs]) if runs else float("nan")


# --- the floors ----------------------------------------------------------------------------------


def _floor_model() -> object:
    import genanki

    return genanki.Model(
        1607392319,
        "Floor",
        fields=[{"name": "Front"}, {"name": "Back"}, {"name": "Extra"}],
        templates=[{"name": "Card 1", "qfmt": "{{Front}}", "afmt": "{{FrontSide}}<hr id=answer>{{Back}}{{Extra}}"}],
    )


def floor_main(bodies_path: Path, out: Path) -> None:
    """Run in its own process: the careful serial script. Prints its parts' times as JSON."""
    started = time.perf_counter()
    import genanki
    import markdown

    data = json.loads(bodies_path.read_text(encoding="utf-8"))
    imported = time.perf_counter()
    md = markdown.Markdown(extensions=data["extensions"], extension_configs=data["configs"])
    rendered = []
    for prompt, answer, extra in data["notes"]:
        front = md.reset().convert(prompt)
        back = md.reset().convert(answer)
        more = md.reset().convert(extra) if extra else ""
        rendered.append((front, back, more))
    converted = time.perf_counter()
    model, deck = _floor_model(), genanki.Deck(2059400110, "Floor")
    for fields in rendered:
        deck.add_note(genanki.Note(model=model, fields=list(fields)))
    genanki.Package(deck).write_to_file(str(out), timestamp=float(EPOCH))
    done = time.perf_counter()
    parts = {"imports": imported - started, "render": converted - imported, "package": done - converted}
    print(json.dumps(parts))


def naive_floor_main(bodies_path: Path, out: Path) -> None:
    """The old, naive baseline: a new converter per text (``markdown.markdown``), prompts left raw."""
    import genanki
    import markdown

    data = json.loads(bodies_path.read_text(encoding="utf-8"))
    extensions, configs = data["extensions"], data["configs"]
    model, deck = _floor_model(), genanki.Deck(2059400110, "Floor")
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


@dataclass
class Run:
    seconds: float
    maxrss_mb: float = 0.0
    pss_mb: float = 0.0
    stdout: str = ""
    phases: dict[str, float] = field(default_factory=dict)


def run(cmd: list[str], *, memory: bool = False, ok: tuple[int, ...] = (0,), timings: Path | None = None) -> Run:
    """Time one process: wall time, peak RSS of one process, peak summed PSS of its tree, stdout, phases."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=EPOCH)
    env.pop("NO_COLOR", None)
    if timings is not None:
        env["DECKGEN_TIMINGS"] = str(timings)
        timings.unlink(missing_ok=True)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak_pss = 0
    stop = threading.Event()
    out: list[bytes] = []

    def sample() -> None:
        nonlocal peak_pss
        while not stop.is_set():
            peak_pss = max(peak_pss, sum(_pss_kb(p) for p in _descendants(proc.pid)))
            stop.wait(0.02)

    threads = [threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""), daemon=True)]
    if memory and Path("/proc").is_dir():
        threads.append(threading.Thread(target=sample, daemon=True))
    for thread in threads:
        thread.start()
    stderr = proc.stderr.read() if proc.stderr else b""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stop.set()
    for thread in threads:
        thread.join()
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd)} exited {code}:\n{stderr.decode(errors='replace')[-2000:]}")
    phases = json.loads(timings.read_text(encoding="utf-8")) if timings is not None and timings.exists() else {}
    return Run(elapsed, usage.ru_maxrss / 1024, peak_pss / 1024, b"".join(out).decode(), phases)


def bench_size(n: int, runs: int, work: Path, log: bool) -> Row:
    row = Row(n)
    source, out = work / "source", work / "build"
    say = print if log else (lambda *a, **k: None)
    t = time.perf_counter()
    generate(source, n)
    bodies = work / "bodies.json"
    dump_bodies(source, bodies)
    say(f"[{n} notes] generated in {time.perf_counter() - t:.1f}s")

    # Round by round, each floor run next to the deckgen runs it is compared with: this machine's speed
    # drifts by half within minutes, and runs far apart in time would compare the drift.
    me = [sys.executable, __file__]
    build = [*DECKGEN, "build", str(source), "-o", str(out), "-q"]
    check = [*DECKGEN, "check", str(source), "-o", str(out), "-q"]
    timings = work / "timings.json"
    for kind in EDIT_KINDS:
        row.warm[kind], row.warm_phases[kind] = [], []
    # Peak memory from a cold build of its own: the sampler reads every process's smaps_rollup each 20 ms,
    # ~5 ms of CPU a sample at 10k notes (a sixth of a core), which would slow the timed builds the
    # unsampled floor is compared with.
    sampled = run(build, memory=True)
    row.maxrss_mb, row.pss_mb = sampled.maxrss_mb, sampled.pss_mb
    for r in range(runs):
        floor = run([*me, "--floor", str(bodies), str(work / "floor.apkg")])
        row.floor.append(floor.seconds)
        row.floor_parts.append(json.loads(floor.stdout))
        row.naive.append(run([*me, "--naive-floor", str(bodies), str(work / "naive.apkg")]).seconds)
        shutil.rmtree(out, ignore_errors=True)
        (source / "deckgen.lock").unlink(missing_ok=True)
        cold = run(build)
        row.cold.append(cold.seconds)
        for kind in EDIT_KINDS:
            edit_one_note(source, r, kind)
            warm = run(build, timings=timings)
            row.warm[kind].append(warm.seconds)
            row.warm_phases[kind].append(warm.phases)
        row.check.append(run(check, ok=(0, 1)).seconds)
        row.check_no_cache.append(run([*check, "--no-cache"], ok=(0, 1)).seconds)
        say(f"[{n} notes] round {r + 1}: floor {floor.seconds:.2f}s, cold {cold.seconds:.2f}s")
    say(f"[{n} notes] floor  {_fmt(row.floor)}  naive floor {_fmt(row.naive)}")
    say(f"[{n} notes] cold   {_fmt(row.cold)}  maxrss {row.maxrss_mb:.0f} MB  pss {row.pss_mb:.0f} MB")
    for kind in EDIT_KINDS:
        say(f"[{n} notes] warm {kind:<7} {_fmt(row.warm[kind])}")
    say(f"[{n} notes] check  {_fmt(row.check)}  no cache {_fmt(row.check_no_cache)}")

    # The cache must never change the output: rebuild the same sources and lock without it.
    fresh = work / "fresh"
    run([*DECKGEN, "build", str(source), "-o", str(fresh), "-q", "--no-cache", "--locked"])
    (warm_apkg,) = out.glob("*.apkg")
    row.identical = warm_apkg.read_bytes() == (fresh / warm_apkg.name).read_bytes()
    return row


def _fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def ratios(rows: dict[int, Row]) -> dict[str, float]:
    out: dict[str, float] = {}
    for n, row in rows.items():
        k = f"{n // 1000}k" if n % 1000 == 0 else str(n)
        floor = row.median("floor")
        out[f"cold/floor @{k}"] = row.median("cold") / floor
        for kind in row.warm:
            out[f"warm {kind}/floor @{k}"] = row.warm_median(kind) / floor
        out[f"check/floor @{k}"] = row.median("check") / floor
        out[f"check --no-cache/floor @{k}"] = row.median("check_no_cache") / floor
        out[f"cold/naive floor @{k}"] = row.median("cold") / row.median("naive")
    if 10_000 in rows and 50_000 in rows:
        for name in ("floor", "cold", "check"):
            out[f"{name} 50k/10k"] = rows[50_000].median(name) / rows[10_000].median(name)
    if 50_000 in rows:
        out["peak PSS @50k (MB)"] = rows[50_000].pss_mb
        out["peak RSS of one process @50k (MB)"] = rows[50_000].maxrss_mb
    return out


def table(rows: dict[int, Row], runs: int) -> str:
    kinds = list(next(iter(rows.values())).warm) if rows else []
    head = f"{'notes':>6} | {'floor':>7} | {'naive':>7} | {'cold':>7} | " + " | ".join(f"{k:>7}" for k in kinds)
    head += f" | {'check':>7} | {'check*':>7} | {'RSS':>6} | {'PSS':>6} | same bytes"
    lines = [head, "-" * len(head)]
    for n, r in rows.items():
        warm = " | ".join(f"{r.warm_median(k):6.2f}s" for k in kinds)
        lines.append(
            f"{n:>6} | {r.median('floor'):6.2f}s | {r.median('naive'):6.2f}s | {r.median('cold'):6.2f}s | {warm} "
            f"| {r.median('check'):6.2f}s | {r.median('check_no_cache'):6.2f}s | {r.maxrss_mb:4.0f}MB "
            f"| {r.pss_mb:4.0f}MB | {'yes' if r.identical else 'NO'}"
        )
    lines.append(
        f"median of {runs} runs; floor = one reused Markdown converter + genanki, serial; naive = markdown.markdown "
        "per text; warm columns = one edit of that kind; check* = check --no-cache; RSS = largest process "
        "(maxrss), PSS = build + workers, summed (peak of 20 ms samples)"
    )
    return "\n".join(lines)


def breakdown(row: Row) -> str:
    """Where each warm edit's time goes, beside the floor's own parts."""
    kinds = list(row.warm)
    lines = [f"where the time goes @{row.notes} notes (median s; floor parts: imports, render, package)"]
    lines.append(f"{'phase':<9} | {'floor':>6} | " + " | ".join(f"{k:>7}" for k in kinds))
    floor = {"startup": "imports", "render": "render", "package": "package"}
    for name in PHASES:
        ref = floor.get(name)
        ref_text = f"{row.part(row.floor_parts, ref):6.2f}" if ref else f"{'':>6}"
        cells = " | ".join(f"{row.part(row.warm_phases[k], name):7.3f}" for k in kinds)
        lines.append(f"{name:<9} | {ref_text} | {cells}")
    lines.append("(wall time minus these phases is interpreter start-up before deckgen is imported)")
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
    parser.add_argument("--naive-floor", nargs=2, type=Path, metavar=("BODIES", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.floor:
        floor_main(*args.floor)
        return
    if args.naive_floor:
        naive_floor_main(*args.naive_floor)
        return
    sizes = [int(s) for s in args.sizes.split(",") if s] + ([50_000] if args.large else [])
    # deckgen's bytecode, as a regular install has it (an editable install under PYTHONDONTWRITEBYTECODE
    # would compile every module on every start; the floor's libraries are compiled in site-packages).
    import compileall

    import deckgen

    compileall.compile_dir(str(Path(deckgen.__file__).parent), quiet=1)
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
    for row in rows.values():
        print()
        print(breakdown(row))
    print()
    for name, value in found.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else f"  (target ≤ {target}: {'met' if value <= target else 'MISSED'})"
        print(f"{name:<36} {value:8.3f}{verdict}")
    print(f"\n{os.cpu_count()} cores, Python {platform.python_version()}, {time.perf_counter() - started:.0f}s total")
    if args.json:
        from deckgen import __version__

        medians = {
            n: {k: r.median(k) for k in ("floor", "naive", "cold", "check", "check_no_cache")}
            | {f"warm {kind}": r.warm_median(kind) for kind in r.warm}
            for n, r in rows.items()
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
