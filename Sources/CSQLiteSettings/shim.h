#include <sqlite3.h>

// sqlite3_config is variadic, which Swift cannot call. Turns off SQLite's memory statistics, whose
// global mutex every sqlite3_malloc takes: with a connection per shard it is the most contended lock
// of the process. Call before any connection opens; returns SQLITE_MISUSE once SQLite is initialized.
static inline int shardflow_sqlite3_disable_memstatus(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
