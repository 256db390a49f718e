"""Faults from the world, not the file: kills, signals, full disks, read-only folders, droppings.

Each ends in a located message and exit 1 (2 for usage), never a traceback, a hang or a leftover.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from deckgen.build.pipeline import STALE_SECONDS, sweep_leftovers
from deckgen.cli import main

BASE = Path(__file__).parent / "data" / "bad" / "_base"
EPOCH = {"SOURCE_DATE_EPOCH": "1764000000"}
UUID = 'uuid = "3f0c2a4e-8d51-4c1e-9a55-6b7e0e4f1a2b"'


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def src(tmp_path: Path) -> Path:
    dest = tmp_path / "src"
    shutil.copytree(BASE, dest)
    return dest


def _big_deck(folder: Path, notes: int) -> None:
    folder.mkdir()
    (folder / "deckgen.toml").write_text(f'name = "Big"\n{UUID}\n', encoding="utf-8")
    for f in range(5):
        words = [hashlib.sha256(f"{f}-{i}".encode()).hexdigest()[:12] for i in range(notes // 5)]
        body = "".join(
            f"## What is {w}?\n<!-- id: n{f}-{i} -->\n\nIt is **{w}**, with $x_{i}$ and `code`.\n\n"
            for i, w in enumerate(words)
        )
        (folder / f"part-{f}.md").write_text(f"---\ndeck: Part {f}\n---\n\n{body}", encoding="utf-8")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_mid_build_leaves_no_worker_no_hang_and_next_build_is_identical(tmp_path: Path) -> None:
    source = tmp_path / "big"
    _big_deck(source, 1000)
    out = tmp_path / "out"
    env = {**os.environ, **EPOCH}
    cmd = [sys.executable, "-m", "deckgen", "build", str(source), "-o", str(out), "-j", "2", "--no-cache"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    workers: set[int] = set()
    while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
        workers = _children(proc.pid)
        time.sleep(0.02)
    assert len(workers) >= 2, "the build never started its workers"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 10)  # `deckgen build | cat` must see the end
    assert ready and proc.stdout.read() is not None
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(w) for w in workers), "a worker outlived the killed build"
    clean = tmp_path / "clean"
    shutil.copytree(source, clean)
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(
        [*cmd[:4], str(clean), "-o", str(tmp_path / "out2"), "-j", "2"], env=env, capture_output=True
    )
    assert second.returncode == 0
    assert (out / "big.apkg").read_bytes() == (tmp_path / "out2" / "big.apkg").read_bytes()
    assert sorted(p.name for p in source.iterdir()) == sorted(p.name for p in clean.iterdir())


def test_sigterm_stops_like_ctrl_c_and_leaves_nothing_behind(tmp_path: Path) -> None:
    source = tmp_path / "big"
    _big_deck(source, 1000)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "deckgen", "build", str(source), "-o", str(out), "-j", "2", "--no-cache"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, **EPOCH})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _children(proc.pid) and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and b"Traceback" not in err
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".deckgen-") or p.name.endswith((".tmp", ".part"))]
    assert leftovers == [] and not (source / "deckgen.lock").exists()


def test_stale_leftovers_are_swept_and_fresh_ones_kept(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out"
    (out / ".deckgen-old").mkdir(parents=True)
    (out / ".deckgen-old" / "collection.anki2").write_bytes(b"x" * 100)
    (out / ".corpus.apkg.abc.tmp").write_bytes(b"partial")
    (src / ".deckgen.lock.abc.tmp").write_bytes(b"partial")
    (out / ".deckgen-fresh").mkdir()
    old = time.time() - STALE_SECONDS - 60
    for path in (out / ".deckgen-old", out / ".corpus.apkg.abc.tmp", src / ".deckgen.lock.abc.tmp"):
        os.utime(path, (old, old))
    sweep_leftovers(out, src)
    assert sorted(p.name for p in out.iterdir()) == [".deckgen-fresh"]
    assert not (src / ".deckgen.lock.abc.tmp").exists()


def test_nothing_temporary_is_created_in_the_source_folder(
    tmp_path: Path, src: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    made: list[str] = []
    real = tempfile.mkstemp

    def spy(*args: object, **kwargs: object) -> tuple[int, str]:
        fd, name = real(*args, **kwargs)  # type: ignore[call-overload]
        made.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    assert _run("build", str(src), "-o", str(tmp_path / "out"), env=EPOCH).exit_code == 0
    assert (src / "deckgen.lock").exists() and made
    assert not [m for m in made if Path(m).parent == src]


def test_huge_source_date_epoch_is_a_usage_error(tmp_path: Path, src: Path) -> None:
    result = _run("build", str(src), "-o", str(tmp_path / "out"), env={"SOURCE_DATE_EPOCH": "9" * 20})
    assert result.exit_code == 2 and "SOURCE_DATE_EPOCH" in result.output


def test_category_file_name_not_utf8_is_located(tmp_path: Path, src: Path) -> None:
    bad = os.fsdecode(b"caf\xe9.md")
    shutil.copyfile(src / "base.md", src / bad)
    result = _run("build", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    assert re.search(r"caf\ufffd\.md:1:1: error: file name is not valid UTF-8 \[encoding\]", result.output)


def test_markdown_suffixes_in_any_case_are_read_and_droppings_skipped(tmp_path: Path, src: Path) -> None:
    text = (src / "base.md").read_text(encoding="utf-8")
    for name, deck in (("UPPER.MD", "Upper"), ("long.markdown", "Long")):
        (src / name).write_text(text.replace("base-one", f"{deck.lower()}-one").replace("deck: Base", f"deck: {deck}"))
    for dropping in (".#base.md", "._base.md", "base.md~", ".base.md.swp"):
        (src / dropping).write_bytes(b"\x00\xff junk")
    os.mkfifo(src / "pipe.md")
    result = _run("build", str(src), "-o", str(tmp_path / "out"), "-v")
    assert result.exit_code == 0, result.output
    assert "Upper" in result.output and "Long" in result.output
    for skipped in (".#base.md", "._base.md", "base.md~", ".base.md.swp", "pipe.md"):
        assert f"{skipped} (" in result.output


def test_category_symlink_leaving_the_source_is_an_error(tmp_path: Path, src: Path) -> None:
    (tmp_path / "elsewhere.md").write_text("## Out?\n<!-- id: out -->\n\nx\n", encoding="utf-8")
    (src / "link.md").symlink_to(tmp_path / "elsewhere.md")
    result = _run("build", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "link.md:1:1: error:" in result.output and "[file-outside-source]" in result.output


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('name = "Default"\n', "2:1 config-invalid"),
        ('name = "x"\n\nname2 = 1\n', "4:1 config-unknown-key"),
        ('# deck\nname = "<b>Deck</b>"\n', "3:1 config-invalid"),
        ('name = "Deck"\noutput = ".apkg"\n', "3:1 config-invalid"),
        ('name = "Deck"\noutput = "a\\u0000b.apkg"\n', "3:1 config-invalid"),
        ('name = "Deck"\noutput = "a\\nb.apkg"\n', "3:1 config-invalid"),
        ('name = "Deck"\n\n[lint]\nmax_answer_words = 0\n', "5:1 config-invalid"),
        ('name = "Deck"\n[lint]\n  max_list_items = 1e9\n', "4:3 config-invalid"),
        ('name = "Deck"\n[lint]\nmax_code_lines = true\n', "4:1 config-invalid"),
    ],
)
def test_deckgen_toml_is_validated_at_the_key(tmp_path: Path, src: Path, config: str, expected: str) -> None:
    (src / "deckgen.toml").write_text(UUID + "\n" + config, encoding="utf-8")
    result = _run("build", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1
    found = re.findall(r"deckgen\.toml:(\d+):(\d+): error: .*\[([a-z-]+)\]", result.output)
    assert [f"{line}:{col} {rule}" for line, col, rule in found] == [expected]


def test_deckgen_toml_not_utf8_is_an_encoding_error(tmp_path: Path, src: Path) -> None:
    (src / "deckgen.toml").write_bytes(b'name = "Caf\xe9"\n' + UUID.encode())
    result = _run("build", str(src), "-o", str(tmp_path / "out"))
    assert result.exit_code == 1 and "deckgen.toml:1:12: error: file is not valid UTF-8" in result.output


@contextmanager
def _read_only(folder: Path) -> Iterator[None]:
    """A folder nobody can write, even root: a read-only tmpfs when root, file modes otherwise."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(0o755)


def test_preview_into_a_read_only_folder_is_a_message(tmp_path: Path, src: Path) -> None:
    with _read_only(tmp_path / "ro"):
        result = _run("preview", str(src), "-o", str(tmp_path / "ro" / "pv"))
    assert result.exit_code == 1 and "error: cannot write the preview" in result.output


def test_new_on_a_read_only_file_is_a_message(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    with _read_only(folder):
        pass
    shutil.copytree(BASE, tmp_path / "staging")
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)], check=True)
        try:
            shutil.copytree(tmp_path / "staging", folder / "src")
            subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
            result = _run("new", "What is new?", "--source", str(folder / "src"))
        finally:
            subprocess.run(["umount", str(folder)], check=True)
    else:
        shutil.copytree(tmp_path / "staging", folder / "src")
        (folder / "src" / "base.md").chmod(0o444)
        result = _run("new", "What is new?", "--source", str(folder / "src"))
    assert result.exit_code == 1 and "error: cannot add the note to" in result.output


@pytest.mark.skipif(os.geteuid() != 0, reason="a small tmpfs needs root to mount")
def test_full_disk_fails_the_package_cleanly_and_keeps_the_old_one(tmp_path: Path) -> None:
    source = tmp_path / "big"
    _big_deck(source, 500)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160k", "tmpfs", str(out)], check=True)
    try:
        result = _run("build", str(source), "-o", str(out), "-q", env=EPOCH)
        left = sorted(p.name for p in out.iterdir())
    finally:
        subprocess.run(["umount", str(out)], check=True)
    assert result.exit_code == 1 and "error: cannot write" in result.output and "big.apkg" in result.output
    assert "big.apkg" not in left and not [n for n in left if n.endswith(".tmp") or n.startswith(".deckgen-")]
    assert not (source / "deckgen.lock").exists()


def test_unwritable_cache_is_a_warning_not_a_failure(tmp_path: Path, src: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / ".cache").write_text("a file where the cache folder should be")
    result = _run("build", str(src), "-o", str(out), "--strict")
    assert result.exit_code == 0, result.output
    assert re.search(r"warning: cannot \w+ the build cache", result.output) and (out / "corpus.apkg").exists()


def test_poisoned_cache_entry_is_sanitized_on_the_way_out(tmp_path: Path, src: Path) -> None:
    from deckgen.build.pipeline import compile_deck
    from deckgen.render.markdown import RenderedNote, safe_note

    deck = compile_deck(src, 1_764_000_000)
    rn = deck.notes[0]
    poisoned = RenderedNote(
        rn.note,
        rn.deck,
        rn.notetype,
        tuple(f + "<script>x()</script><img src=a onerror=y()>" for f in rn.fields),
        rn.tags,
        rn.card_ords,
        rn.media,
    )
    safe = safe_note(poisoned)
    assert all("<script" not in f and not re.search(r"<[^>]*onerror", f) for f in safe.fields)
    assert safe_note(rn) is rn


@pytest.mark.parametrize("where", ["src/deckgen.lock", "out/.cache/deckgen.sqlite"])
def test_a_fifo_where_a_file_should_be_never_hangs_the_build(tmp_path: Path, src: Path, where: str) -> None:
    fifo = tmp_path / where
    fifo.parent.mkdir(parents=True, exist_ok=True)
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    cmd = [sys.executable, "-m", "deckgen", "build", str(src), "-o", str(tmp_path / "out"), "-q"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env={**os.environ, **EPOCH})
    assert "Traceback" not in done.stderr
    if where.endswith(".lock"):
        assert done.returncode == 1 and "the lock is not a regular file" in done.stderr
    else:
        assert done.returncode == 0 and "warning: cannot open the build cache" in done.stderr
