"""Process-level helpers: a pool for CPU-bound batches (one worker per core, started only when
needed) and garbage-collector settings for one-shot command-line runs."""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import signal
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # imported when a pool starts: a run that needs none (a warm build) skips ~20 ms
    import multiprocessing.context
    from concurrent.futures import ProcessPoolExecutor

T = TypeVar("T")


_DEFAULT_GC = gc.get_threshold()


def batch_gc() -> None:
    """For a one-shot run (the CLI): let the cyclic collector rarely do full passes.

    A build keeps every note of the deck alive until it ends, and each full collection walks all
    of them: on a 10k-note warm build that is a tenth of the time, for garbage that is almost all
    freed by reference counting anyway. Worker processes go back to the default (``_worker_init``).
    """
    gc.set_threshold(20_000, 20, 1_000)


@contextlib.contextmanager
def no_cycle_collection() -> Iterator[None]:
    """No cyclic garbage collection while a build or check runs (as it was again afterwards).

    Parsing, restoring and packaging a deck make millions of objects and no cycles: at 10k notes the
    collector's passes over them took a twelfth of a warm build, for nothing. What does make cyclic
    garbage, the Markdown converter, turns collection back on where it runs (``collect_cycles``).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def collect_cycles() -> None:
    """This process renders: its converter makes a little cyclic garbage per note, to be collected."""
    gc.enable()


def _die_with_parent(parent: int) -> None:
    """Make the kernel kill this worker when the main process dies (SIGKILL included), so no worker
    lingers holding the terminal or a pipe (``deckgen build | tee log`` would never end)."""
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def release_free_memory() -> None:
    """Hand memory the process has freed back to the system (glibc keeps it otherwise): a big build's
    transient peaks (reading the files, the duplicate search) would stay in its footprint to the end."""
    if sys.platform == "linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)


def _worker_init(warm_up: Callable[[], None] | None, parent: int | None = None) -> None:
    if parent is not None:
        _die_with_parent(parent)
    # Interrupts and termination are the main process's to handle: it shuts the pool down.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    gc.set_threshold(*_DEFAULT_GC)  # renderers make a little cyclic garbage per note: collect it
    gc.enable()  # (forked from a build that runs without: ``no_cycle_collection``)
    if warm_up is not None:
        warm_up()


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits where Python can see them)."""
    if hasattr(os, "process_cpu_count"):  # Python 3.13+
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def forks() -> bool:
    """Whether workers are forked (Linux): they start in milliseconds with every module already imported.
    Elsewhere (macOS, Windows) spawn is the safe choice and workers import deckgen themselves."""
    import multiprocessing

    return sys.platform == "linux" and "fork" in multiprocessing.get_all_start_methods()


def _context() -> multiprocessing.context.BaseContext:
    import multiprocessing

    return multiprocessing.get_context("fork" if forks() else "spawn")


class WorkPool:
    """Submit batches to worker processes, started by ``start`` or on the first submit; shut down on exit.

    Start it early — before the deck is parsed — when the work will surely need it: forked
    workers share the parent's memory pages only until the parent touches its objects again, so
    a pool forked from a large parent costs that memory twice.
    """

    def __init__(self, jobs: int, warm_up: Callable[[], None] | None = None) -> None:
        self.jobs = jobs
        self.warm_up = warm_up  # run once in each worker as it starts (e.g. build a renderer)
        self._executor: ProcessPoolExecutor | None = None

    @property
    def started(self) -> bool:
        return self._executor is not None

    def start(self, *, warm_up: bool = True) -> None:
        """Fork the workers now; ``warm_up``: each runs the pool's warm-up as it starts (``submit``
        starts the pool without it: the work it is given says what the workers need)."""
        if self._executor is not None:
            return
        # Frozen objects are skipped by the collector, so forked workers do not touch (and copy)
        # every page of the parent's heap on their first garbage collection.
        from concurrent.futures import ProcessPoolExecutor

        gc.freeze()
        try:
            init = (self.warm_up if warm_up else None, os.getpid())
            self._executor = ProcessPoolExecutor(
                self.jobs, mp_context=_context(), initializer=_worker_init, initargs=init
            )
            _widen_result_pipe(self._executor)
            for _ in range(self.jobs):  # fork every worker now, from the process as it is now
                self._executor.submit(_nothing)
        finally:
            gc.unfreeze()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        self.start(warm_up=False)
        assert self._executor is not None
        return self._executor.submit(fn, *args)

    def close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # RuntimeError: Ctrl-C or SIGTERM landed while the executor was still starting its manager
        # thread, which it then cannot join. The workers need no joining: they die with this process
        # (see ``_worker_init``), and the interruption itself is what the caller reports.
        with contextlib.suppress(RuntimeError):
            executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> WorkPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Linux's fcntl command to resize a pipe's buffer (F_SETPIPE_SZ), and the size asked for (the default
# limit for a user, /proc/sys/fs/pipe-max-size).
_F_SETPIPE_SZ = 1031
RESULT_PIPE_BYTES = 1 << 20


def _widen_result_pipe(executor: ProcessPoolExecutor) -> None:
    """Let a worker write a whole result (up to a MiB) into the pipe at once (Linux; best effort).

    Through the default 64 KiB pipe, a result of several hundred kB goes in a dozen pieces, and each
    piece waits until this process's result thread gets the interpreter lock back from a busy main
    thread (up to 5 ms each): the worker sits idle meanwhile.
    """
    reader = getattr(getattr(executor, "_result_queue", None), "_reader", None)
    if sys.platform == "linux" and reader is not None:
        import fcntl

        with contextlib.suppress(OSError, ValueError):
            fcntl.fcntl(reader.fileno(), _F_SETPIPE_SZ, RESULT_PIPE_BYTES)


def _nothing() -> None:
    return None
