"""SQLite schema migrations (WAL file; one writer at a time)."""

from __future__ import annotations

from bot.store.migrations import Migration, check_order

MIGRATIONS: list[Migration] = check_order(
    [
        Migration(
            1,
            "jobs, triage records, feedback",
            """
CREATE TABLE jobs (
    job_id          INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id     TEXT NOT NULL UNIQUE,
    event           TEXT NOT NULL,
    action          TEXT,
    payload         BLOB NOT NULL,
    issue_key       TEXT,
    installation_id INTEGER,
    state           TEXT NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    not_before      REAL NOT NULL,
    lease_until     REAL,
    worker_id       TEXT,
    last_error      TEXT,
    received_at     REAL NOT NULL,
    updated_at      REAL NOT NULL
);
CREATE INDEX jobs_runnable ON jobs (job_id) WHERE state IN ('queued', 'running');
CREATE INDEX jobs_issue_unfinished ON jobs (issue_key, job_id) WHERE state IN ('queued', 'running');

CREATE TABLE triage_records (
    repo         TEXT NOT NULL,
    issue_number INTEGER NOT NULL,
    classes      TEXT NOT NULL,
    decision     TEXT NOT NULL,
    comment_id   INTEGER,
    input_hash   TEXT NOT NULL,
    kb_version   TEXT NOT NULL,
    labels_added TEXT NOT NULL,
    muted        INTEGER NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (repo, issue_number)
);

CREATE TABLE feedback (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repo          TEXT NOT NULL,
    issue_number  INTEGER NOT NULL,
    user_login    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    diagnosed     TEXT NOT NULL,
    correct_class TEXT,
    created_at    REAL NOT NULL
);
CREATE INDEX feedback_repo ON feedback (repo, id);
""",
        ),
        # Payloads compressed: a 13.5 kB issue delivery takes ~3 kB in the WAL and the database, and
        # the checkpoint that copies the WAL into the database (and fsyncs it) no longer stalls the
        # commits behind it. Rows written before stay as they are ('identity').
        Migration(
            2,
            "payload encoding",
            """
ALTER TABLE jobs ADD COLUMN payload_encoding TEXT NOT NULL DEFAULT 'identity';
""",
        ),
    ]
)
