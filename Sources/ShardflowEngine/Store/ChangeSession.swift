import CSQLiteSession
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SQLite's process-wide settings, applied once before the first store opens (see
/// `shardflow_sqlite3_disable_memstatus`: without its statistics mutex, a malloc of SQLite's takes no
/// global lock). Too late if something else in the process opened a database first: then it does nothing.
enum SQLiteProcessSettings {
    static let applied: Bool = shardflow_sqlite3_disable_memstatus() == SQLITE_OK
}

/// One transaction's row changes, captured by SQLite's session extension: the shard log's record of
/// the transaction. A patchset, not a changeset: a delete carries only its primary key and an update
/// only its new values, so acknowledging an outbox row costs a few bytes instead of the row again.
///
/// Every table with a primary key is captured except `shard_log_state`, which says where this copy of
/// the store stands in the log and differs between copies by design. (Tables without a primary key
/// are not captured at all; migration v7 gave the last one, `replay_queue`, an explicit key.)
final class ChangeSession {
    private var handle: OpaquePointer?

    /// Starts capturing on `connection` (inside the transaction, before its first write).
    init(connection: OpaquePointer) throws {
        var session: OpaquePointer?
        var code = sqlite3session_create(connection, "main", &session)
        guard code == SQLITE_OK, let session else { throw ShardError.io("sqlite3session_create failed (\(code))") }
        sqlite3session_table_filter(session, { _, table in
            guard let table else { return 0 }
            return strcmp(table, "shard_log_state") == 0 ? 0 : 1
        }, nil)
        code = sqlite3session_attach(session, nil)
        guard code == SQLITE_OK else {
            sqlite3session_delete(session)
            throw ShardError.io("sqlite3session_attach failed (\(code))")
        }
        handle = session
    }

    deinit {
        if let handle { sqlite3session_delete(handle) }
    }

    /// The changes so far (empty when the transaction changed no captured row).
    func patchset() throws -> [UInt8] {
        guard let handle else { return [] }
        var size: Int32 = 0
        var buffer: UnsafeMutableRawPointer?
        let code = sqlite3session_patchset(handle, &size, &buffer)
        defer { sqlite3_free(buffer) }
        guard code == SQLITE_OK else { throw ShardError.io("sqlite3session_patchset failed (\(code))") }
        guard let buffer, size > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: buffer, count: Int(size)))
    }

    /// Applies a patchset recorded by `patchset()` to `connection` (inside a transaction). The log is the
    /// truth, so a row that differs is replaced and a row that is missing is skipped; both are counted
    /// in the result, since a store restored from its own log has none.
    static func apply(_ patchset: [UInt8], to connection: OpaquePointer) throws -> Int {
        let conflicts = UnsafeMutablePointer<Int>.allocate(capacity: 1)
        conflicts.initialize(to: 0)
        defer { conflicts.deallocate() }
        let code = patchset.withUnsafeBytes { bytes in
            sqlite3changeset_apply(
                connection, Int32(bytes.count), UnsafeMutableRawPointer(mutating: bytes.baseAddress), nil,
                { context, kind, _ in
                    context?.assumingMemoryBound(to: Int.self).pointee += 1
                    switch kind {
                    case SQLITE_CHANGESET_DATA, SQLITE_CHANGESET_CONFLICT: return SQLITE_CHANGESET_REPLACE
                    default: return SQLITE_CHANGESET_OMIT
                    }
                }, conflicts)
        }
        guard code == SQLITE_OK else { throw ShardError.io("sqlite3changeset_apply failed (\(code))") }
        return conflicts.pointee
    }
}
