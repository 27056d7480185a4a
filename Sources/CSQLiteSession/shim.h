// SQLite's session extension (change capture and changeset apply). The system libsqlite3 is built with
// it, but sqlite3.h declares it only when these are defined.
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

// sqlite3_config is variadic, which Swift cannot call. Turns off SQLite's memory statistics, whose
// global mutex every sqlite3_malloc takes: with a connection per shard (and the session extension
// allocating per captured row) it is the most contended lock of the process. Call before any
// connection opens; returns SQLITE_MISUSE once SQLite is initialized.
static inline int shardflow_sqlite3_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
