"""Optuna storages: open one from a URL with one-line errors, and recover trials of dead workers.

URLs: any SQLAlchemy URL Optuna's RDB storage takes (``sqlite:///runs/x/study.db``,
``postgresql+psycopg2://user@host:5432/db``, ``mysql+pymysql://...``), or ``journal:///path/file.log``
for Optuna's append-only journal file. RDB storages get heartbeats (every ``HEARTBEAT_S`` seconds;
a trial silent for ``GRACE_S`` is failed and retried by whichever worker notices first).

Recovery rule (no trial lost, none repeated): a RUNNING trial is dead when its worker tag
(``host:pid``, set as the trial's first user attribute) names this host and a pid that no longer
runs, or when it has no tag and started more than ``GRACE_S`` ago. A dead trial is set to FAIL --
the storage refuses a second transition, so of two racing workers only one succeeds -- and that
one enqueues a WAITING trial with the same parameters (user attr ``retry_of``), which the next
``ask()`` pops. Completed trials are never touched.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import os
import socket
import time
import warnings
import weakref
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from costmodels.errors import CodesignError

if TYPE_CHECKING:
    import optuna

HEARTBEAT_S = 5
GRACE_S = 30
WORKER_ATTR = "worker"


def worker_tag() -> str:
    """``host:pid`` of this process (stored on every trial it runs)."""
    return f"{socket.gethostname()}:{os.getpid()}"


def embedded_url(run_dir: str | os.PathLike[str]) -> str:
    """The default storage of a run folder: an SQLite file ``RUN_DIR/study.db``."""
    path = Path(run_dir).resolve() / "study.db"
    return f"sqlite:///{path}"


def _redact(url: str) -> str:
    """Hide a password in ``scheme://user:password@host`` before printing a URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            cred = cred.split(":", 1)[0] + ":***"
        return f"{scheme}://{cred}@{host}"
    return url


def retry_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial, params: dict[str, Any] | None = None,
                checked: bool | None = None) -> None:
    """Re-enqueue a failed (dead or interrupted) trial so the next worker runs it once more, in its slot and
    with its role (reference, early): ``params`` (default: its sampled ones, or those it was enqueued with
    if it sampled none); ``checked``: whether it made its duplicate check (default: it sampled, ``slot``
    set; a death in the few ms between sampling and the check goes unseen); a retry that was not checked
    makes the check (``unchecked``)."""
    params = params or dict(trial.params) or dict(trial.system_attrs.get("fixed_params") or {})
    attrs = {"retry_of": trial.number, "reference": bool(trial.user_attrs.get("reference"))}
    if trial.user_attrs.get("early"):
        attrs["early"] = True
    if not ("slot" in trial.user_attrs if checked is None else checked):
        attrs["unchecked"] = True
    study.enqueue_trial(params, user_attrs=attrs)


def check_url(url: str, read_only: bool = False) -> None:
    """The checks :func:`open_storage` makes before connecting (one line each): a URL, a file-backed storage's
    folder (and, ``read_only``, the file itself), an installed driver. Nothing is created."""
    import importlib.util

    shown = _redact(url)
    if url.startswith("journal:"):
        path = _journal_path(url)
        if not str(path) or str(path) == ".":
            raise CodesignError(f"--storage {url!r} names no journal file; e.g. journal:///runs/s/study.log")
        if not path.parent.is_dir():
            raise CodesignError(f"--storage {shown}: folder {path.parent} does not exist; create it first")
        if path.is_dir():
            raise CodesignError(f"--storage {shown}: {path} is a folder; name the journal file in it")
        if read_only and not path.is_file():
            raise CodesignError(f"--storage {shown}: no such journal file; give the one a search wrote")
        if path.is_file() and not _is_journal(path):
            raise CodesignError(f"--storage {shown}: {path} is not an Optuna journal (its first line is no journal "
                                "record); give a new file or the journal of a search")
        return
    if "://" not in url:
        raise CodesignError(
            f"--storage {url!r} is not a URL; use e.g. sqlite:///runs/s/study.db, "
            "postgresql+psycopg2://user@host:5432/db or journal:///path/study.log"
        )
    if url.split("?", 1)[0] in ("sqlite://", "sqlite:///", "sqlite:///:memory:"):
        raise CodesignError(f"--storage {url!r} names no database file (an in-memory study is lost when the "
                            "search ends); give a path, e.g. sqlite:///runs/s/study.db")
    if url.startswith("sqlite:///"):
        db = Path(url.removeprefix("sqlite:///").split("?", 1)[0])
        if not db.parent.is_dir():
            raise CodesignError(f"--storage {shown}: folder {db.parent} does not exist; create it first")
        if read_only and not db.is_file():
            raise CodesignError(f"--storage {shown}: no such database file; give the study.db a search wrote")
    _check_server_url(url, shown)
    if url.startswith("postgres"):
        driver = "pg8000" if "+pg8000" in url else "psycopg" if "+psycopg:" in url else "psycopg2"
        if importlib.util.find_spec(driver) is None:
            raise CodesignError(f"--storage {shown}: the PostgreSQL driver {driver!r} is not installed; install "
                                "the postgres extra: pip install 'codesign[postgres]'")


def _journal_path(url: str) -> Path:
    return Path(url.split(":", 1)[1].removeprefix("//"))


def _is_journal(path: Path) -> bool:
    """An empty file, or one whose first line is an Optuna journal record (a JSON object with ``op_code``)."""
    import json

    try:
        with open(path, "rb") as fh:
            first = fh.readline(1 << 20)
    except OSError:
        return True  # unreadable: opening it reports the reason
    if not first.strip():
        return True
    try:
        record = json.loads(first)
    except ValueError:
        return False
    return isinstance(record, dict) and "op_code" in record


def _check_server_url(url: str, shown: str) -> None:
    """The parts of a database URL that are wrong before any driver or server is asked: a port that is no
    number, the ``postgres://`` alias SQLAlchemy no longer accepts."""
    from sqlalchemy.engine import make_url

    scheme = url.split("://", 1)[0]
    if scheme.split("+", 1)[0] == "postgres":
        raise CodesignError(f"--storage {shown}: SQLAlchemy names the scheme postgresql, not postgres; write "
                            f"{scheme.replace('postgres', 'postgresql', 1)}://...")
    try:
        port = make_url(url).port
    except ValueError:
        raise CodesignError(f"--storage {shown}: the port after the host is not a number; e.g. "
                            "postgresql+psycopg2://user@host:5432/db") from None
    except Exception:  # noqa: BLE001 - anything else unparsable: the connection attempt names it
        return
    if port is not None and not 0 < port < 65536:
        raise CodesignError(f"--storage {shown}: port {port} is out of range (1-65535)")


def open_storage(url: str, read_only: bool = False) -> optuna.storages.BaseStorage:
    """Open (creating tables if needed) the storage at ``url``; user errors are one line.

    Unreachable servers, unknown schemes, missing drivers and unwritable files raise
    :class:`CodesignError` naming the (password-redacted) URL and the fix. Nothing is deleted.
    ``read_only`` (``codesign pareto``): a storage file must exist, and an SQLite file is opened read-only,
    so that nothing is written into it (nor beside it, when no writer has it open).
    """
    import optuna
    import optuna.storages.journal

    check_url(url, read_only)
    shown = _redact(url)
    if url.startswith("journal:"):
        try:
            backend = optuna.storages.journal.JournalFileBackend(str(_journal_path(url)))
            return optuna.storages.JournalStorage(backend)
        except OSError as exc:
            raise CodesignError(f"--storage {shown}: cannot open the journal file ({exc.strerror})") from None
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("postgresql"):
        engine_kwargs["connect_args"] = {"connect_timeout": 10}
    elif url.startswith("sqlite:///"):
        engine_kwargs["connect_args"] = {"timeout": 60}
        if read_only:
            db = Path(url.removeprefix("sqlite:///").split("?", 1)[0]).resolve()
            # no write-ahead log beside the file: no process has it open for writing (a WAL writer keeps one
            # while connected), so read it as immutable: SQLite then creates no -shm/-wal files beside it
            idle = not db.with_name(db.name + "-wal").exists()
            url = f"sqlite:///file:{db}?mode=ro{'&immutable=1' if idle else ''}&uri=true"
    attempts = 10
    for attempt in range(attempts):
        try:
            storage = _rdb(url, engine_kwargs)
            break
        except ModuleNotFoundError as exc:
            hint = (" (install the postgres extra: pip install 'codesign[postgres]')" if "psycopg" in str(exc.name)
                    else "")
            raise CodesignError(
                f"--storage {shown}: database driver {exc.name!r} is not installed{hint}"
            ) from None
        except Exception as exc:  # sqlalchemy errors: bad URL, refused connection, auth, unwritable file
            first = str(getattr(exc, "orig", None) or exc).strip().splitlines()
            reason = first[0] if first else type(exc).__name__
            racing = ("duplicate key", "already exists", "UNIQUE constraint failed: alembic_version")
            if attempt < attempts - 1 and any(r in reason for r in racing):
                time.sleep(0.1 * (attempt + 1))  # another worker is creating the tables right now (~0.2 s)
                continue
            raise CodesignError(
                f"--storage {shown} is unreachable or invalid: {reason}; check the URL and that the server runs"
            ) from None
    if url.startswith("sqlite:///") and not read_only:
        _sqlite_wal(storage)
    return storage


def _rdb(url: str, engine_kwargs: dict[str, Any]) -> optuna.storages.RDBStorage:
    import optuna

    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna 5; we rely on them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            heartbeat_stale_trial_callback=retry_trial,
        )


def _sqlite_wal(storage: optuna.storages.RDBStorage) -> None:
    """WAL journal + synchronous=NORMAL: each commit no longer waits for a disk flush (about 7 ms
    -> 0.1 ms here); still safe if a process is killed (only an OS crash can lose the last commits).
    """
    from sqlalchemy import event

    def pragmas(conn: Any, _record: Any) -> None:
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    event.listen(storage.engine, "connect", pragmas)
    storage.engine.dispose()  # reconnect through the listener
    if not _WAL_ENGINES:
        atexit.register(_close_sqlite)
    _WAL_ENGINES.add(storage.engine)


_WAL_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


def _close_sqlite() -> None:
    """At exit, close this process's SQLite connections: the last one to close checkpoints the write-ahead
    log into study.db and removes study.db-wal / -shm, so a finished run's study.db holds every trial
    by itself (copied alone, it lost the log's trials: a search left a 4 MB log behind)."""
    for engine in list(_WAL_ENGINES):
        with contextlib.suppress(Exception):
            engine.dispose()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(trial: optuna.trial.FrozenTrial, now: dt.datetime | None = None) -> bool:
    """Apply the module's recovery rule to one RUNNING trial."""
    tag = trial.user_attrs.get(WORKER_ATTR)
    if isinstance(tag, str) and ":" in tag:
        host, pid = tag.rsplit(":", 1)
        if host == socket.gethostname() and pid.isdigit():
            return int(pid) != os.getpid() and not _pid_alive(int(pid))
        return False  # another machine: its heartbeat (RDB) decides
    if trial.datetime_start is None:
        return False
    now = now or dt.datetime.now()
    return (now - trial.datetime_start).total_seconds() > GRACE_S


def fail_untagged(study: optuna.Study, since: dt.datetime) -> list[int]:
    """Fail (and enqueue the retry of) every RUNNING trial started after ``since`` that no worker tagged:
    a worker stopped between Optuna creating its trial and tagging it. Call only once every worker this
    process started after ``since`` is dead (then an untagged trial of that time is theirs)."""
    import optuna

    failed = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if WORKER_ATTR in trial.user_attrs or trial.datetime_start is None or trial.datetime_start < since:
            continue
        try:
            study._storage.set_trial_system_attr(trial._trial_id, "fail_reason", "worker stopped")
            if study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL):
                retry_trial(study, trial)
                failed.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return failed


def recover_dead_trials(study: optuna.Study) -> list[int]:
    """Fail every dead RUNNING trial and enqueue its retry; returns the failed trial numbers."""
    import optuna

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if not is_dead(trial):
            continue
        try:  # the reason first: a finished trial accepts no attributes
            study._storage.set_trial_system_attr(trial._trial_id, "fail_reason", "worker died")
            changed = study._storage.set_trial_state_values(
                trial._trial_id, state=optuna.trial.TrialState.FAIL
            )
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # another worker got there first
        if changed:
            retry_trial(study, trial)
            recovered.append(trial.number)
    return recovered


def retry_own_running(study: optuna.Study, pids: Iterable[int] | None = None) -> list[int]:
    """Ctrl-C in this process: fail (as ``interrupted``) and queue again every trial it left RUNNING, one
    stopped in Optuna's own bookkeeping outside the objective (which queues its own); the resumed search
    then runs them first, each in its slot. ``pids``: the trials of these worker processes of this host
    instead (stopped, so their trials are no longer running; left alone, a resume would call them dead).
    Returns their numbers."""
    import optuna

    host = socket.gethostname()
    mine, stopped = ({worker_tag()} if pids is None else {f"{host}:{pid}" for pid in pids}), []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_ATTR) not in mine:
            continue
        try:  # the marks first: a finished trial accepts no attributes
            study._storage.set_trial_user_attr(trial._trial_id, "interrupted", True)
            changed = study._storage.set_trial_state_values(trial._trial_id, state=optuna.trial.TrialState.FAIL)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
        if changed:
            retry_trial(study, trial)
            stopped.append(trial.number)
    return stopped
