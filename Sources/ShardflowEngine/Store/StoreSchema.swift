import GRDB

/// The shard store's versioned schema. Add a migration for every change; never edit a shipped one.
enum StoreSchema {
    static func migrator() -> DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE shard_meta (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    shard INTEGER NOT NULL,
                    epoch INTEGER NOT NULL DEFAULT 0,
                    executorEnabled INTEGER NOT NULL DEFAULT 1,
                    completionSeq INTEGER NOT NULL DEFAULT 0,
                    replaySeq INTEGER NOT NULL DEFAULT 0
                );
                CREATE TABLE consumed_offsets (
                    stream TEXT PRIMARY KEY,
                    nextOffset INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE workflows (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    args TEXT NOT NULL,
                    createdAt INTEGER NOT NULL,
                    startedAt INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    result TEXT,
                    errorMessage TEXT,
                    errorStep TEXT,
                    generation INTEGER NOT NULL DEFAULT 0,
                    completedAt INTEGER
                ) WITHOUT ROWID;
                CREATE INDEX workflows_by_status ON workflows(status);
                CREATE TABLE journal (
                    workflowId TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    kind TEXT NOT NULL,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL,
                    output TEXT,
                    error TEXT,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    round INTEGER,
                    completedAt INTEGER,
                    PRIMARY KEY (workflowId, seq)
                ) WITHOUT ROWID;
                CREATE TABLE tasks (
                    workflowId TEXT NOT NULL,
                    stepId INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    input TEXT NOT NULL,
                    createdAt INTEGER NOT NULL,
                    state TEXT NOT NULL,
                    attempt INTEGER NOT NULL DEFAULT 0,
                    readyAt INTEGER NOT NULL,
                    claimedEpoch INTEGER,
                    enqueuedAt INTEGER NOT NULL,
                    maxAttempts INTEGER NOT NULL,
                    initialBackoffMs INTEGER NOT NULL,
                    multiplier REAL NOT NULL,
                    maxBackoffMs INTEGER NOT NULL,
                    jitter REAL NOT NULL,
                    PRIMARY KEY (workflowId, stepId)
                ) WITHOUT ROWID;
                CREATE INDEX tasks_fifo ON tasks(state, createdAt, workflowId, stepId);
                CREATE INDEX tasks_by_ready_time ON tasks(state, readyAt);
                CREATE TABLE replay_queue (
                    workflowId TEXT NOT NULL UNIQUE,
                    trigger TEXT NOT NULL,
                    enqueuedAt INTEGER NOT NULL
                );
                CREATE TABLE timers (
                    workflowId TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    fireAt INTEGER NOT NULL,
                    PRIMARY KEY (workflowId, seq)
                ) WITHOUT ROWID;
                CREATE INDEX timers_by_fire_time ON timers(fireAt);
                CREATE TABLE event_waits (
                    workflowId TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    name TEXT NOT NULL,
                    PRIMARY KEY (workflowId, seq)
                ) WITHOUT ROWID;
                CREATE INDEX event_waits_by_name ON event_waits(workflowId, name, seq);
                CREATE TABLE events (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    workflowId TEXT NOT NULL,
                    name TEXT NOT NULL,
                    value TEXT NOT NULL,
                    receivedAt INTEGER NOT NULL
                );
                CREATE INDEX events_by_name ON events(workflowId, name, id);
                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    topic TEXT NOT NULL,
                    key TEXT NOT NULL,
                    value BLOB NOT NULL
                );
                CREATE TABLE control_commands (
                    commandId TEXT PRIMARY KEY,
                    result BLOB NOT NULL,
                    appliedAt INTEGER NOT NULL
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("v2-partial-task-indexes") { db in
            // Index only what the queries look for: queued tasks in FIFO order, and queued tasks that
            // wait out a retry backoff (the only ones whose readiness is a matter of time; a new task
            // is ready when queued, readyAt = enqueuedAt). A task then touches 2 index entries in its
            // life instead of 8, about a sixth of a step's b-tree writes.
            try db.execute(sql: """
                DROP INDEX tasks_fifo;
                DROP INDEX tasks_by_ready_time;
                CREATE INDEX tasks_queued_fifo ON tasks(createdAt, workflowId, stepId) WHERE state = 'queued';
                CREATE INDEX tasks_backing_off ON tasks(readyAt) WHERE state = 'queued' AND readyAt > enqueuedAt;
                """)
        }
        migrator.registerMigration("v3-finished-workflows-index") { db in
            // The retention sweep finds finished workflows by completion time without reading the
            // running ones or the whole table.
            try db.execute(sql: """
                CREATE INDEX workflows_finished ON workflows(completedAt) WHERE status <> 'running';
                """)
        }
        migrator.registerMigration("v4-quarantine-and-outbox-age") { db in
            // Deaths of the process attributed to a workflow's code (see CrashGuard), whether it was
            // quarantined for them, and when each outbox row was written (the oldest row's age).
            try db.execute(sql: """
                ALTER TABLE workflows ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE workflows ADD COLUMN quarantined INTEGER NOT NULL DEFAULT 0;
                ALTER TABLE outbox ADD COLUMN createdAt INTEGER NOT NULL DEFAULT 0;
                """)
        }
        migrator.registerMigration("v5-versions-and-parking") { db in
            // The workflow version a workflow started with (rows from before versions ran version 1), and
            // why it is parked (nil: not parked; see `Shard.park`); parkedAt stays as the last park's time.
            try db.execute(sql: """
                ALTER TABLE workflows ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
                ALTER TABLE workflows ADD COLUMN parkedReason TEXT;
                ALTER TABLE workflows ADD COLUMN parkedAt INTEGER;
                CREATE INDEX workflows_parked ON workflows(parkedAt) WHERE parkedReason IS NOT NULL;
                """)
        }
        migrator.registerMigration("v6-tasks-in-the-journal") { db in
            // A step's task is its pending journal entry: scheduling writes one row instead of two, and a
            // result resolves it in one update instead of an update and a delete. `taskState` is NULL when
            // the entry has no task (resolved, or not a step); `fifoAt` is the workflow's createdAt (I4).
            // `attempts` counts the claims, as the task's attempt did.
            try db.execute(sql: """
                ALTER TABLE journal ADD COLUMN taskState TEXT;
                ALTER TABLE journal ADD COLUMN input TEXT;
                ALTER TABLE journal ADD COLUMN fifoAt INTEGER;
                ALTER TABLE journal ADD COLUMN readyAt INTEGER;
                ALTER TABLE journal ADD COLUMN enqueuedAt INTEGER;
                ALTER TABLE journal ADD COLUMN claimedEpoch INTEGER;
                ALTER TABLE journal ADD COLUMN maxAttempts INTEGER;
                ALTER TABLE journal ADD COLUMN initialBackoffMs INTEGER;
                ALTER TABLE journal ADD COLUMN multiplier REAL;
                ALTER TABLE journal ADD COLUMN maxBackoffMs INTEGER;
                ALTER TABLE journal ADD COLUMN jitter REAL;
                UPDATE journal SET taskState = t.state, input = t.input, fifoAt = t.createdAt, readyAt = t.readyAt,
                    enqueuedAt = t.enqueuedAt, claimedEpoch = t.claimedEpoch, attempts = t.attempt,
                    maxAttempts = t.maxAttempts, initialBackoffMs = t.initialBackoffMs, multiplier = t.multiplier,
                    maxBackoffMs = t.maxBackoffMs, jitter = t.jitter
                FROM tasks t WHERE t.workflowId = journal.workflowId AND t.stepId = journal.seq;
                DROP TABLE tasks;
                CREATE INDEX journal_queued_fifo ON journal(fifoAt, workflowId, seq) WHERE taskState = 'queued';
                CREATE INDEX journal_backing_off ON journal(readyAt) WHERE taskState = 'queued' AND readyAt > enqueuedAt;
                CREATE INDEX journal_running ON journal(workflowId, seq) WHERE taskState = 'running';
                CREATE INDEX journal_parked ON journal(name) WHERE taskState = 'parked';
                """)
        }
        migrator.registerMigration("v7-shard-log") { db in
            // The shard log captures row changes by primary key (SQLite's session extension), so the replay
            // queue gets one: its rowid, made an explicit INTEGER PRIMARY KEY (the same order as before).
            // `shard_log_state` says where this copy stands in the log (never itself logged).
            try db.execute(sql: """
                CREATE TABLE replay_queue_v7 (
                    id INTEGER PRIMARY KEY,
                    workflowId TEXT NOT NULL UNIQUE,
                    trigger TEXT NOT NULL,
                    enqueuedAt INTEGER NOT NULL
                );
                INSERT INTO replay_queue_v7 (id, workflowId, trigger, enqueuedAt)
                    SELECT rowid, workflowId, trigger, enqueuedAt FROM replay_queue;
                DROP TABLE replay_queue;
                ALTER TABLE replay_queue_v7 RENAME TO replay_queue;
                CREATE TABLE shard_log_state (
                    id INTEGER PRIMARY KEY CHECK (id = 1),
                    checkpointOffset INTEGER NOT NULL DEFAULT -1,
                    checkpointEpoch INTEGER NOT NULL DEFAULT 0,
                    checkpointSeq INTEGER NOT NULL DEFAULT 0,
                    lastSeq INTEGER NOT NULL DEFAULT 0,
                    writerEpoch INTEGER NOT NULL DEFAULT 0
                );
                INSERT INTO shard_log_state (id) VALUES (1);
                """)
        }
        migrator.registerMigration("v8-workflow-status-indexes") { db in
            // `workflows_by_status` held an entry for every kept workflow (a week of finished ones), keyed by
            // (status, id): every start inserted into it and every completion moved an entry between two
            // places keyed by id, about 3 of a transaction's 20 written pages in `bench-engine`. The running
            // workflows get a partial index of their own, in creation order (starts append, completions come
            // off its old end), and the finished ones' index carries their status: counting by status, which
            // the worker's gauges do every 2 s, reads the two indexes alone. The quarantined ones get one too
            // (the gauge counted them by reading every kept workflow). An index carries the column of its own
            // condition so that a count reads the index alone: this SQLite does not infer it from the
            // condition, and read every counted row (queued tasks: 31 ms against 0.7 ms for 66,000).
            try db.execute(sql: """
                DROP INDEX workflows_by_status;
                CREATE INDEX workflows_running ON workflows(createdAt, status) WHERE status = 'running';
                DROP INDEX workflows_finished;
                CREATE INDEX workflows_finished ON workflows(completedAt, status) WHERE status <> 'running';
                CREATE INDEX workflows_quarantined ON workflows(id) WHERE quarantined = 1;
                DROP INDEX journal_queued_fifo;
                CREATE INDEX journal_queued_fifo ON journal(fifoAt, workflowId, seq, taskState) WHERE taskState = 'queued';
                """)
        }
        return migrator
    }
}
