#!/usr/bin/env python3
"""How long the worker's gauge queries take on a shard store (the worker runs them every 2 s per shard, on
its read-only connection), and how SQLite plans them:

    scripts/store-query-times.py COPY/shard-000.sqlite [COPY/shard-000.sqlite-wal]

Run it on a copy (with its WAL, if the store was running), not on a live store. The queries are those of
`StoreQueries.stats` and `workflowsByStatus` as of schema v8; on an older store the status counts fall back
to the one GROUP BY the older versions ran.
"""
import shutil
import sqlite3
import sys
import tempfile
import time

QUERIES = [
    "SELECT status, COUNT(*) FROM workflows WHERE status <> 'running' GROUP BY status",
    "SELECT COUNT(*) FROM workflows WHERE status = 'running'",
    "SELECT COUNT(*) FROM workflows WHERE quarantined = 1",
    "SELECT COUNT(*) FROM workflows WHERE parkedReason IS NOT NULL",
    "SELECT COUNT(*) FROM journal WHERE taskState = 'queued'",
    "SELECT COUNT(*) FROM journal WHERE taskState = 'running'",
    "SELECT COUNT(*) FROM replay_queue",
    "SELECT COUNT(*) FROM outbox",
    "SELECT COUNT(*) FROM timers",
    "SELECT COUNT(*) FROM event_waits",
    "SELECT MIN(fifoAt) FROM journal WHERE taskState = 'queued'",
]
BEFORE_V8 = "SELECT status, COUNT(*) FROM workflows GROUP BY status"


def main() -> None:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    scratch = tempfile.mkdtemp()
    shutil.copy(sys.argv[1], scratch + "/store.sqlite")
    if len(sys.argv) == 3:
        shutil.copy(sys.argv[2], scratch + "/store.sqlite-wal")
    db = sqlite3.connect(scratch + "/store.sqlite")
    indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    queries = QUERIES if "workflows_running" in indexes else [BEFORE_V8] + QUERIES[2:]
    workflows = db.execute("SELECT COUNT(*) FROM workflows").fetchone()[0]
    print(f"{workflows} workflows; schema {'v8 or later' if 'workflows_running' in indexes else 'before v8'}")
    total = 0.0
    for sql in queries:
        started = time.perf_counter()
        for _ in range(5):
            db.execute(sql).fetchall()
        elapsed = (time.perf_counter() - started) / 5 * 1000
        total += elapsed
        plan = "; ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql))
        print(f"{elapsed:8.2f} ms  {sql}\n            {plan}")
    print(f"{total:8.2f} ms  in all")
    db.close()
    shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
