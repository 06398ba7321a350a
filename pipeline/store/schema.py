"""The journal's schema: its identity, and the migrations that build it step by step.
"""

from __future__ import annotations

#: ``PRAGMA application_id`` of a toetwitch journal (ASCII "TTwj").
APPLICATION_ID = 0x5454776A


# Each step upgrades the schema from version i to i + 1 (``MIGRATIONS[i]``). Append, never edit.
MIGRATIONS: list[str] = [
    # 0 -> 1: the first schema.
    """
    CREATE TABLE recordings (
        id            INTEGER PRIMARY KEY,
        sha256        TEXT NOT NULL UNIQUE,   -- content hash of the file bytes
        path          TEXT,                   -- where it was last seen
        name          TEXT,
        size_bytes    INTEGER,
        file_mtime    TEXT,                   -- local ISO time of the file's modification
        first_seen_at TEXT NOT NULL,
        last_seen_at  TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id                    INTEGER PRIMARY KEY,
        session_key           TEXT NOT NULL UNIQUE,  -- 'sha256:<hash>' or 'live:<id or time>'
        kind                  TEXT NOT NULL CHECK (kind IN ('file', 'live')),
        recording_id          INTEGER REFERENCES recordings(id) ON DELETE CASCADE,
        name                  TEXT,
        start_time            TEXT,   -- wall clock of the first sample used for bucketing
        start_time_source     TEXT NOT NULL
                              CHECK (start_time_source IN ('recording', 'file_mtime', 'journal_time')),
        day                   TEXT NOT NULL,  -- local YYYY-MM-DD the session started
        streams               TEXT,
        duration_s            REAL,
        time_rest_s           REAL,
        twitches              INTEGER NOT NULL DEFAULT 0,  -- fasciculation events
        twitches_per_min_rest REAL,
        limb_movements        INTEGER,
        cramps                INTEGER,
        episodes              INTEGER,
        night_fraction        REAL,
        signal_grade          TEXT,
        summary_json          TEXT NOT NULL,
        analysed_at           TEXT NOT NULL
    );
    CREATE INDEX sessions_day ON sessions(day);
    CREATE TABLE twitches (          -- every detected event; twitch counts use type='fasciculation'
        id              INTEGER PRIMARY KEY,
        session_id      INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        time_s          REAL NOT NULL,
        wall_time       TEXT,        -- local ISO time of the event
        day             TEXT,        -- session day
        hour            INTEGER,     -- 0..23 of wall_time
        source          TEXT,
        type            TEXT,
        duration_ms     REAL,
        peak_to_peak_uv REAL,
        phases          INTEGER,
        snr             REAL,
        acc_peak_mg     REAL,
        doublet         INTEGER,
        extra_json      TEXT
    );
    CREATE INDEX twitches_session ON twitches(session_id);
    CREATE INDEX twitches_day ON twitches(day, type);
    CREATE TABLE episodes (
        id                     INTEGER PRIMARY KEY,
        session_id             INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
        episode                INTEGER,
        start_s                REAL,
        end_s                  REAL,
        wall_start             TEXT,
        day                    TEXT,
        twitches               INTEGER,
        duration_s             REAL,
        rate_per_min           REAL,
        median_peak_to_peak_uv REAL,
        max_peak_to_peak_uv    REAL
    );
    CREATE INDEX episodes_session ON episodes(session_id);
    CREATE TABLE answers (
        id           INTEGER PRIMARY KEY,
        recorded_at  TEXT NOT NULL,
        day          TEXT NOT NULL,
        answers_json TEXT NOT NULL
    );
    CREATE TABLE assessments (
        id               INTEGER PRIMARY KEY,
        answers_id       INTEGER REFERENCES answers(id) ON DELETE SET NULL,
        recorded_at      TEXT NOT NULL,
        day              TEXT NOT NULL,
        escalation_level TEXT,
        top_cause        TEXT,
        top_probability  REAL,
        assessment_json  TEXT NOT NULL
    );
    """,
]


#: The schema version this toetwitch writes.
SCHEMA_VERSION = len(MIGRATIONS)


#: The tables, in export order.
TABLES = ("recordings", "sessions", "twitches", "episodes", "answers", "assessments")
