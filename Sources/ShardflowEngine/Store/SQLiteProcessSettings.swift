import CSQLiteSettings

/// SQLite's process-wide settings, applied once before the first store opens (see
/// `shardflow_sqlite3_disable_memstatus`: without its statistics mutex, a malloc of SQLite's takes no
/// global lock). Too late if something else in the process opened a database first: then it does nothing.
enum SQLiteProcessSettings {
    static let applied: Bool = shardflow_sqlite3_disable_memstatus() == SQLITE_OK
}
