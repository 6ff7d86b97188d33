"""Search worker processes (``--n-jobs`` > 1): the fork server they are forked from, and how each one
ends with the search process that started it."""

from __future__ import annotations

import atexit
import contextlib
import os
import time
from collections.abc import Sequence


def start_worker_server(preload: Sequence[str] = ()) -> None:
    """Start the fork server worker processes are forked from (once per process; later calls do
    nothing), importing ``preload`` there. Call it before this process imports anything heavy, so
    both import at the same time; :func:`run_search` starts it itself when nobody did. Nothing in
    the server runs torch ops before a fork (no OpenMP pool to inherit)."""
    import multiprocessing
    from multiprocessing import forkserver

    if _SERVER[0]:
        return
    _SERVER[0] = True
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(list(preload))
    forkserver.ensure_running()
    atexit.register(_stop_worker_server)


def _stop_worker_server() -> None:
    """At this process's exit, end its fork server at once (SIGTERM) instead of letting it notice and exit by
    itself: it would first run a whole interpreter shutdown with torch loaded (~0.7 s here) while holding
    this process's stdout and stderr, so a caller reading them (``subprocess.run(capture_output=True)``,
    ``| tee``) waited that long after this process had exited. Its workers have ended by then; one that has
    not ends with it (:func:`die_with_parent`)."""
    import signal
    from multiprocessing import forkserver

    pid = getattr(getattr(forkserver, "_forkserver", None), "_forkserver_pid", None)  # CPython's, 3.8 to 3.14
    if not pid:
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
        os.waitpid(pid, 0)


_SERVER = [False]


def die_with_parent() -> None:
    """Make this worker process end when the search process that started it ends (through the fork server it
    was forked from, which ends with that process), however it ends (kill -9
    included): Linux ``prctl(PR_SET_PDEATHSIG, SIGTERM)``, elsewhere a thread polling ``os.getppid()``.
    Ctrl-C is left to the parent (it reaches every process of the terminal's group): the parent stops the
    workers and says so in one line; a worker's trial left RUNNING is retried on resume (``storage``)."""
    import signal
    import sys
    import threading

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM (the parent stopping it, or the parent's death) ends the worker as an exit, not a kill: its
    # interpreter cleans up (named semaphores are released, nothing is reported leaked)
    signal.signal(signal.SIGTERM, _stop)
    # the process that forked this one: the fork server (:func:`start_worker_server`), which exits when the
    # search process that started it does, or the search process itself
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        import ctypes

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGTERM, 0, 0, 0) == 0:  # 1 = PR_SET_PDEATHSIG
                if os.getppid() != parent:  # the parent died before prctl took effect
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="codesign-parent-watch").start()


_STOPPED = [False]


def _stop(*_: object) -> None:
    """SIGTERM: leave as an exit (SystemExit 143). The exit can land anywhere, Optuna's bookkeeping
    included, which may answer it with an error of its own: :func:`stopped` tells the two apart."""
    import signal
    import sys

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once: a second one (the parent's death) must not cut the exit
    _STOPPED[0] = True
    sys.exit(143)


def stopped() -> bool:
    """Whether this worker was told to stop (SIGTERM from its parent or the parent's death)."""
    return _STOPPED[0]
