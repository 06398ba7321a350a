"""The journal: one SQLite file per user holding every analysed recording, live session,
twitch, episode, questionnaire answer and assessment.

Where it lives: ``--journal PATH``, else ``$TOETWITCH_JOURNAL``, else
``$XDG_DATA_HOME/toetwitch/journal.sqlite`` (``~/.local/share/toetwitch/journal.sqlite``).

Design notes (why, not what):

* The file is identified as ours by ``PRAGMA application_id`` (:data:`APPLICATION_ID`); any
  other SQLite file, any non-SQLite file and any damaged file is refused with a clear error and
  never written to, so a wrong ``--journal`` can never destroy somebody's data.
* The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` upgrade an older journal in
  one transaction. A journal from a newer toetwitch is refused rather than guessed at.
* WAL mode, ``busy_timeout`` and short ``BEGIN IMMEDIATE`` transactions let a live monitor and
  a batch analysis write at the same time.
* The file is created ``0600`` in a ``0700`` directory: twitch history is health data.
* A recording file is keyed by the sha256 of its bytes, a live session by its session id (or
  start time), so analysing the same recording again replaces its rows, never duplicates them.

Day bucketing: a session belongs to the local calendar day on which it *started* (a night
recording belongs to the evening it began). The wall clock comes from ``summary["start_time"]``
(its clock time as written; an offset is not converted); when that is unknown it is estimated
as the file's modification time minus the duration, and ``sessions.start_time_source`` says
which (``recording``, ``file_mtime`` or ``journal_time`` for live sessions without a clock).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sqlite3
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from toetwitch.pipeline.errors import UserError
from toetwitch.pipeline.log import logger
from toetwitch.pipeline.store.schema import APPLICATION_ID, MIGRATIONS, SCHEMA_VERSION, TABLES

__all__ = [
    "APPLICATION_ID",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "TABLES",
    "Journal",
    "content_sha256",
    "default_journal_path",
    "journal_analysis",
    "journal_assessment",
    "journal_path_from_args",
]

#: How long a writer waits for another writer's lock before giving up, in ms.
BUSY_TIMEOUT_MS = 30_000
#: Hours counted as night for ``night_fraction`` (22:00 to 07:00), as in summary.json.
NIGHT_HOURS = frozenset([22, 23, 0, 1, 2, 3, 4, 5, 6])
#: Event columns stored in their own ``twitches`` columns; any other column goes to ``extra_json``.
EVENT_COLUMNS = ("time_s", "source", "type", "duration_ms", "peak_to_peak_uv", "phases", "snr",
                 "acc_peak_mg", "doublet")
EPISODE_COLUMNS = ("episode", "start_s", "end_s", "twitches", "duration_s", "rate_per_min",
                   "median_peak_to_peak_uv", "max_peak_to_peak_uv")

_SQLITE_HEADER = b"SQLite format 3\x00"
#: Journal files found intact by ``PRAGMA quick_check`` in this process.
_CHECKED: set[str] = set()


# --------------------------------------------------------------------------- paths and CLI


def default_journal_path() -> Path:
    """``$TOETWITCH_JOURNAL``, else ``$XDG_DATA_HOME/toetwitch/journal.sqlite``
    (``~/.local/share/toetwitch/journal.sqlite`` when ``XDG_DATA_HOME`` is unset)."""
    env = os.environ.get("TOETWITCH_JOURNAL")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / "toetwitch" / "journal.sqlite"


def journal_path_from_args(args: argparse.Namespace | None) -> Path:
    """The journal path chosen by ``args.journal`` or the default."""
    path = getattr(args, "journal", None) if args is not None else None
    return Path(path).expanduser() if path else default_journal_path()


# --------------------------------------------------------------------------- helpers


def content_sha256(path: Path | str, chunk_bytes: int = 1 << 20) -> str:
    """sha256 hex digest of a file's bytes, read in ``chunk_bytes`` pieces (bounded memory)."""
    h = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk_bytes):
                h.update(block)
    except OSError as exc:
        raise UserError(f"{path}: cannot read the recording to journal it: {exc.strerror or exc}", 1) from exc
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/pandas values; NaN and infinities become None."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    try:  # pandas NA / NaT
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), allow_nan=False, sort_keys=True)


def _num(value: Any) -> float | None:
    """A finite float or None."""
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: Any) -> int | None:
    f = _num(value)
    return None if f is None else int(round(f))


def _now() -> datetime:
    return datetime.now().replace(microsecond=0)


def parse_wall_time(text: str | None) -> datetime | None:
    """A naive local datetime from an ISO-8601 string, keeping its clock time as written.

    ``2026-11-20T22:10:00+01:00`` -> 22:10 that day (the offset is the recorder's local time and
    is not converted). Returns None for None or unparseable text.
    """
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=None)


# --------------------------------------------------------------------------- the journal


class Journal:
    """A toetwitch journal file: open (checking it is ours), migrate, read, write, close.

    Parameters
    ----------
    path : Path or str
        The SQLite file.
    create : bool
        Create the file (``0600``, parent directory ``0700``) when it does not exist. When false
        a missing file raises :class:`UserError`.

    Use as a context manager::

        with Journal(path) as j:
            j.record_analysis(result, "night.csv")
    """

    def __init__(self, path: Path | str, *, create: bool = True):
        self.path = Path(path).expanduser()
        self._conn: sqlite3.Connection | None = None
        self._open(create)

    # ---- opening and checking

    def _open(self, create: bool) -> None:
        p = self.path
        if p.exists() and not p.is_file():
            raise UserError(f"journal {p} is not a file (a directory?); choose another --journal path", 2)
        if not p.exists():
            if not create:
                raise UserError(
                    f"no journal at {p} yet: analyse a recording first, or pass --journal PATH", 1)
            self._create_file(p)
        self._check_header(p)
        try:
            conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as exc:
            raise UserError(f"cannot open the journal {p}: {exc}", 1) from exc
        self._conn = conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._check_identity()
            conn.execute("PRAGMA foreign_keys = ON")
            self.migrate()
            # WAL is persistent in the file; setting it again is a no-op. Needs no open transaction.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                logger.warning("journal %s: could not switch to WAL mode (%s)", p, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
        except UserError:
            self.close()
            raise
        except sqlite3.DatabaseError as exc:
            self.close()
            raise self._error(exc) from exc

    @staticmethod
    def _create_file(p: Path) -> None:
        try:
            if not p.parent.exists():
                p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                os.chmod(p.parent, 0o700)  # mkdir's mode is masked by the umask
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(fd, 0o600)
            os.close(fd)
            logger.info("created the journal %s", p)
        except FileExistsError:
            pass  # another process created it first: open theirs
        except OSError as exc:
            raise UserError(f"cannot create the journal {p}: {exc.strerror or exc}", 1) from exc

    @staticmethod
    def _check_header(p: Path) -> None:
        try:
            with open(p, "rb") as fh:
                head = fh.read(len(_SQLITE_HEADER))
        except OSError as exc:
            raise UserError(f"cannot read the journal {p}: {exc.strerror or exc}", 1) from exc
        if head and head != _SQLITE_HEADER:
            raise UserError(
                f"{p} is not a toetwitch journal (not an SQLite database); it was left untouched. "
                "Choose another --journal path.", 1)

    def _check_identity(self) -> None:
        conn = self.conn
        # read the header and the table count from one snapshot: another process may be
        # creating this journal right now, between the two reads
        conn.execute("BEGIN")
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            n_objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            conn.execute("COMMIT")
        if app_id == APPLICATION_ID:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise UserError(
                    f"the journal {self.path} was written by a newer toetwitch (schema {version}, "
                    f"this one knows {SCHEMA_VERSION}); upgrade toetwitch. The file was left untouched.", 1)
            self._quick_check()
            return
        if app_id == 0 and n_objects == 0:
            return  # a new, empty file: migrate() claims it
        raise UserError(
            f"{self.path} is an SQLite database of another program, not a toetwitch journal "
            f"(application_id {app_id:#x}); it was left untouched. Choose another --journal path.", 1)

    def _quick_check(self) -> None:
        # Once per file and process: it reads the whole file, and a batch run opens it per recording.
        key = str(self.path.resolve())
        if key in _CHECKED:
            return
        rows = self.conn.execute("PRAGMA quick_check(1)").fetchall()
        if rows != [("ok",)]:
            raise self._damaged(rows[0][0] if rows else "quick_check failed")
        _CHECKED.add(key)

    def _error(self, exc: sqlite3.DatabaseError) -> UserError:
        """A clear message for an SQLite error: locked, not permitted, or a damaged file."""
        if isinstance(exc, sqlite3.OperationalError):
            if "locked" in str(exc) or "busy" in str(exc):
                return UserError(f"the journal {self.path} stayed locked by another toetwitch for "
                                 f"{BUSY_TIMEOUT_MS // 1000} s; try again", 1)
            return UserError(f"cannot use the journal {self.path}: {exc} (check the file's and its "
                             "folder's permissions and free disk space)", 1)
        return self._damaged(exc)

    def _damaged(self, why: object) -> UserError:
        return UserError(
            f"the journal {self.path} is damaged ({why}); it was left untouched. Move it aside "
            "(toetwitch then starts a new one) or pass --journal PATH.", 1)

    def migrate(self) -> int:
        """Bring the schema to :data:`SCHEMA_VERSION`; returns the version found before.

        Runs in one ``BEGIN IMMEDIATE`` transaction, re-reading the version under the write
        lock so that two processes opening a new journal at once migrate it once.
        """
        conn = self.conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version >= SCHEMA_VERSION:
            return version
        with self.write():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            if app_id not in (0, APPLICATION_ID):
                raise UserError(f"{self.path} is not a toetwitch journal; it was left untouched.", 1)
            if app_id == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise UserError(f"{self.path} is an SQLite database of another program; "
                                "it was left untouched.", 1)
            for step in range(version, SCHEMA_VERSION):
                for statement in _split_sql(MIGRATIONS[step]):
                    conn.execute(statement)
                logger.info("journal %s: migrated schema %d -> %d", self.path, step, step + 1)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        return version

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise UserError(f"the journal {self.path} is closed", 1)
        return self._conn

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (``BEGIN IMMEDIATE``: take the write lock up front so
        concurrent writers queue on ``busy_timeout`` instead of failing mid-transaction)."""
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    # ---- writing

    def record_analysis(self, result: Any, source_path: Path | str | None = None, *,
                        session_key: str | None = None) -> int:
        """Store one analysed recording or live session; returns its ``sessions.id``.

        Parameters
        ----------
        result : AnalysisResult
            Anything with ``events`` and ``episodes`` DataFrames and a ``summary`` dict.
        source_path : Path or str, optional
            The recording file: keyed by its content hash, so a second analysis of the same
            bytes replaces the first. None for live sessions, keyed by ``session_key``, else
            ``summary["session_id"]``, else the start time.
        """
        summary = dict(getattr(result, "summary", None) or {})
        now = _now()
        rec_row: dict[str, Any] | None = None
        start = parse_wall_time(summary.get("start_time"))
        start_source = "recording"
        duration_s = _num(summary.get("duration_s")) or 0.0
        if source_path is not None:
            sp = Path(source_path)
            sha = content_sha256(sp)
            st = sp.stat()
            mtime = datetime.fromtimestamp(st.st_mtime).replace(microsecond=0)
            rec_row = {"sha256": sha, "path": str(sp.resolve()), "name": sp.stem,
                       "size_bytes": st.st_size, "file_mtime": mtime.isoformat()}
            key = f"sha256:{sha}"
            kind = "file"
            if start is None:
                # A file is usually last modified when its recorder stopped writing.
                start = mtime - timedelta(seconds=duration_s)
                start_source = "file_mtime"
        else:
            kind = "live"
            sid = session_key or summary.get("session_id")
            if start is None:
                start = now - timedelta(seconds=duration_s)
                start_source = "journal_time"
            key = f"live:{sid}" if sid else f"live:{start.isoformat()}"
        start = start.replace(microsecond=0)
        day = start.date().isoformat()

        events = _frame(getattr(result, "events", None))
        episodes = _frame(getattr(result, "episodes", None))
        n_twitches = summary.get("twitches")
        if n_twitches is None and events is not None and "type" in events:
            n_twitches = int((events["type"] == "fasciculation").sum())
        signal_quality = summary.get("signal_quality") or {}
        session_row = {
            "session_key": key, "kind": kind, "name": summary.get("recording") or (rec_row or {}).get("name"),
            "start_time": start.isoformat(), "start_time_source": start_source, "day": day,
            "streams": summary.get("streams"), "duration_s": _num(summary.get("duration_s")),
            "time_rest_s": _num(summary.get("time_rest_s")), "twitches": _int(n_twitches) or 0,
            "twitches_per_min_rest": _num(summary.get("twitches_per_min_rest")),
            "limb_movements": _int(summary.get("limb_movements")), "cramps": _int(summary.get("cramps")),
            "episodes": _int(summary.get("episodes")) if summary.get("episodes") is not None
            else (len(episodes) if episodes is not None else None),
            "night_fraction": _num(summary.get("night_fraction")),
            "signal_grade": signal_quality.get("grade") if isinstance(signal_quality, Mapping) else None,
            "summary_json": _dumps(summary), "analysed_at": now.isoformat(),
        }
        twitch_rows = list(_event_rows(events, start, day))
        episode_rows = list(_episode_rows(episodes, start, day))
        try:
            with self.write() as conn:
                recording_id = None
                if rec_row is not None:
                    conn.execute(
                        "INSERT INTO recordings (sha256, path, name, size_bytes, file_mtime, first_seen_at,"
                        " last_seen_at) VALUES (:sha256, :path, :name, :size_bytes, :file_mtime, :now, :now)"
                        " ON CONFLICT(sha256) DO UPDATE SET path=excluded.path, name=excluded.name,"
                        " file_mtime=excluded.file_mtime, last_seen_at=excluded.last_seen_at",
                        {**rec_row, "now": now.isoformat()})
                    recording_id = conn.execute("SELECT id FROM recordings WHERE sha256 = ?",
                                                (rec_row["sha256"],)).fetchone()[0]
                # Replacing = delete the old session (twitches and episodes cascade) and insert.
                conn.execute("DELETE FROM sessions WHERE session_key = ?", (key,))
                cols = ", ".join(["recording_id", *session_row])
                marks = ", ".join(["?"] * (len(session_row) + 1))
                cur = conn.execute(f"INSERT INTO sessions ({cols}) VALUES ({marks})",
                                   (recording_id, *session_row.values()))
                session_id = int(cur.lastrowid)
                conn.executemany(
                    "INSERT INTO twitches (session_id, time_s, wall_time, day, hour, source, type,"
                    " duration_ms, peak_to_peak_uv, phases, snr, acc_peak_mg, doublet, extra_json)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(session_id, *r) for r in twitch_rows])
                conn.executemany(
                    "INSERT INTO episodes (session_id, episode, start_s, end_s, wall_start, day,"
                    " twitches, duration_s, rate_per_min, median_peak_to_peak_uv, max_peak_to_peak_uv)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(session_id, *r) for r in episode_rows])
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        logger.info("journal: recorded %s (%d events, %d episodes) for %s", key[:20],
                    len(twitch_rows), len(episode_rows), day)
        return session_id

    def record_assessment(self, answers: Mapping[str, Any] | None,
                          assessment: Mapping[str, Any]) -> int:
        """Store questionnaire answers and the assessment made from them; returns the
        ``assessments.id``."""
        now = _now()
        assessment = dict(assessment or {})
        escalation = assessment.get("escalation") or {}
        level = escalation.get("level") if isinstance(escalation, Mapping) else None
        causes = assessment.get("causes") or []
        top = causes[0] if causes and isinstance(causes[0], Mapping) else {}
        try:
            with self.write() as conn:
                answers_id = None
                if answers is not None:
                    answers_id = conn.execute(
                        "INSERT INTO answers (recorded_at, day, answers_json) VALUES (?, ?, ?)",
                        (now.isoformat(), now.date().isoformat(), _dumps(answers))).lastrowid
                cur = conn.execute(
                    "INSERT INTO assessments (answers_id, recorded_at, day, escalation_level, top_cause,"
                    " top_probability, assessment_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (answers_id, now.isoformat(), now.date().isoformat(), level, top.get("cause"),
                     _num(top.get("probability")), _dumps(assessment)))
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc
        return int(cur.lastrowid)

    # ---- reading

    def read_table(self, table: str):
        """One table as a pandas DataFrame (columns as in the schema)."""
        import pandas as pd

        if table not in TABLES:
            raise UserError(f"unknown journal table {table!r}; tables: {', '.join(TABLES)}", 2)
        try:
            cur = self.conn.execute(f"SELECT * FROM {table} ORDER BY id")
            cols = [d[0] for d in cur.description]
            return pd.DataFrame(cur.fetchall(), columns=cols)
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def query(self, sql: str, params: tuple | Mapping = ()) -> list[tuple]:
        """Rows of a read-only query; SQLite errors become :class:`UserError`."""
        try:
            return self.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc) from exc

    def latest_assessment(self) -> dict[str, Any] | None:
        """The most recent assessment as its JSON dict plus ``recorded_at``, or None."""
        rows = self.query("SELECT recorded_at, assessment_json FROM assessments ORDER BY id DESC LIMIT 1")
        if not rows:
            return None
        out = json.loads(rows[0][1])
        out["recorded_at"] = rows[0][0]
        return out


def _split_sql(script: str) -> list[str]:
    """Statements of a migration script (no semicolons inside our statements or comments)."""
    lines = [ln.split("--", 1)[0] for ln in script.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def _frame(obj: Any):
    import pandas as pd

    if obj is None:
        return None
    if isinstance(obj, pd.DataFrame):
        return obj
    return pd.DataFrame(obj)


def _event_rows(events: Any, start: datetime, day: str) -> Iterator[tuple]:
    if events is None or len(events) == 0:
        return
    extra_cols = [c for c in events.columns if c not in EVENT_COLUMNS]
    for rec in events.to_dict("records"):
        t_s = _num(rec.get("time_s"))
        if t_s is None:
            continue
        wall = (start + timedelta(seconds=t_s)).replace(microsecond=0)
        doublet = rec.get("doublet")
        extra = {c: rec[c] for c in extra_cols}
        yield (t_s, wall.isoformat(), day, wall.hour, rec.get("source"), rec.get("type"),
               _num(rec.get("duration_ms")), _num(rec.get("peak_to_peak_uv")), _int(rec.get("phases")),
               _num(rec.get("snr")), _num(rec.get("acc_peak_mg")),
               None if doublet is None or _num(doublet) is None else int(bool(doublet)),
               _dumps(extra) if extra else None)


def _episode_rows(episodes: Any, start: datetime, day: str) -> Iterator[tuple]:
    if episodes is None or len(episodes) == 0:
        return
    for i, rec in enumerate(episodes.to_dict("records"), start=1):
        s = _num(rec.get("start_s"))
        wall = None if s is None else (start + timedelta(seconds=s)).replace(microsecond=0).isoformat()
        yield (_int(rec.get("episode")) or i, s, _num(rec.get("end_s")), wall, day,
               _int(rec.get("twitches")), _num(rec.get("duration_s")), _num(rec.get("rate_per_min")),
               _num(rec.get("median_peak_to_peak_uv")), _num(rec.get("max_peak_to_peak_uv")))


# --------------------------------------------------------------------------- hooks for commands


def journal_problem(action: Any) -> str | None:
    """Run ``action()`` (a journal read or write); return None, or what went wrong in words.

    Every command treats an unusable journal (damaged, foreign, in a read-only folder) the
    same way: its own work is done and written first, the journal is left as it is, and the
    command ends with exit status 1 and one line saying it was not recorded
    (:func:`report_journal_problem`).
    """
    import sqlite3

    try:
        action()
    except UserError as exc:
        return str(exc)
    except (OSError, sqlite3.Error) as exc:
        return f"{journal_path_hint(exc)}"
    return None


def journal_path_hint(exc: BaseException) -> str:
    """One line for an OS or SQLite error (no exception class name)."""
    return getattr(exc, "strerror", None) or str(exc) or "unknown error"


def report_journal_problem(problem: str, what: str = "this run") -> int:
    """Print the one line for a journal that could not be used; the exit status (1)."""
    import sys

    print(f"toetwitch: error: {what} was not recorded in the journal: {problem} "
          "(everything else was done and written; the journal was not changed)", file=sys.stderr)
    return 1


def journal_analysis(args: argparse.Namespace, result: Any, source_path: Path | str | None) -> None:
    """Record an AnalysisResult in the journal chosen by ``args`` (nothing with ``--no-journal``,
    nothing for demonstration data: :mod:`toetwitch.pipeline.store.policy`).

    ``source_path`` is the recording file (keyed by content hash: the same bytes again replace
    their earlier rows) or None for a live session. Journal problems raise :class:`UserError`.
    """
    from toetwitch.pipeline.store.policy import is_demonstration

    if getattr(args, "no_journal", False) or is_demonstration(source_path):
        return
    path = journal_path_from_args(args)
    with Journal(path) as j:
        j.record_analysis(result, source_path)


def journal_assessment(args: argparse.Namespace, answers: dict, assessment: dict) -> None:
    """Record questionnaire ``answers`` and the ``assessment`` (``assess --json`` object) in the
    journal chosen by ``args`` (nothing with ``--no-journal``)."""
    if getattr(args, "no_journal", False):
        return
    with Journal(journal_path_from_args(args)) as j:
        j.record_assessment(answers, assessment)


def file_mode(path: Path | str) -> int:
    """Permission bits of ``path`` (for tests and ``history --json``)."""
    return stat.S_IMODE(os.stat(path).st_mode)
