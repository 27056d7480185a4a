import GRDB
import GRDBSQLite

/// The store's statements: prepared once per connection (`StatementCache`), with their values bound
/// and their columns read straight through the SQLite C API.
///
/// Why not GRDB's `StatementArguments` and `Row`: they box every value in an existential and copy
/// every row, which cost about as much as SQLite's own work on the engine's hot path (a step takes
/// some ten statements). Transactions, migrations and the connection stay GRDB's.
/// Prepared statements of one connection, keyed by the address of their static SQL text: a lookup
/// hashes one pointer instead of the whole statement, and SQL built at run time cannot reach it.
/// Used only on its connection's queue (the store's queue serializes every use).
final class StatementCache {
    private var statements: [UnsafeRawPointer: Statement] = [:]
    private var replayed: [String: Statement] = [:]
    /// Statements run since the store opened (a benchmark figure: statements per step).
    private(set) var executed = 0

    init() {}

    func statement(_ sql: StaticString, in db: Database) throws -> OpaquePointer {
        // A literal has a pointer unless it is one Unicode scalar, which no statement is.
        precondition(sql.hasPointerRepresentation, "SQL must be a string literal")
        let key = UnsafeRawPointer(sql.utf8Start)
        executed += 1
        if let cached = statements[key] { return cached.sqliteStatement }
        let text = sql.withUTF8Buffer { String(decoding: $0, as: UTF8.self) }
        let statement = try db.makeStatement(sql: text)
        statements[key] = statement
        return statement.sqliteStatement
    }

    /// Statements replayed from the shard log (`RedoReplay`), by their text: data, so checked first.
    /// Only a single insert, update or delete is run.
    func replayStatement(_ text: String, in db: Database, seq: Int64) throws -> OpaquePointer {
        if let cached = replayed[text] { return cached.sqliteStatement }
        let keyword = text.drop(while: \.isWhitespace).prefix(7).uppercased()
        guard ["INSERT", "UPDATE", "DELETE", "REPLACE"].contains(where: { keyword.hasPrefix($0) }) else {
            throw RedoReplayError(description: "transaction \(seq) holds a statement that is not an insert, update or delete: \(text.prefix(200))")
        }
        let statement: Statement
        do {
            // GRDB refuses text with more than one statement.
            statement = try db.makeStatement(sql: text)
        } catch {
            throw RedoReplayError(description: "transaction \(seq): \(error)")
        }
        replayed[text] = statement
        return statement.sqliteStatement
    }

    /// Drops every statement (before the connection closes).
    func removeAll() {
        statements.removeAll()
        replayed.removeAll()
    }
}

/// A connection with its statement cache: the only way engine code runs SQL. Every statement is a
/// `StaticString` literal, so values can only be bound (`?`), never interpolated into the text.
///
/// With a `capture` (a transaction of a shard that writes its log), every insert, update or delete that
/// changed a row is recorded with its values as it completes (`RedoCapture`).
struct StoreConnection {
    let db: Database
    let cache: StatementCache
    let capture: RedoCapture?

    init(db: Database, cache: StatementCache, capture: RedoCapture? = nil) {
        self.db = db
        self.cache = cache
        self.capture = capture
    }

    /// Rows changed by the last insert, update or delete.
    var changes: Int { db.changesCount }

    /// Runs a statement to completion (an insert, update or delete; rows it returns are ignored).
    func run<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws {
        let statement = try prepared(sql, repeat each values)
        defer { finish(statement) }
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE {
                captureWrite(statement, sql, repeat each values)
                return
            }
            if code != SQLITE_ROW { throw failure(code, sql) }
        }
    }

    /// Records a completed statement that changed rows (reads and no-op writes change nothing).
    private func captureWrite<each Value: StoreBindable>(_ statement: OpaquePointer, _ sql: StaticString,
                                                        _ values: repeat each Value) {
        guard let capture, sqlite3_stmt_readonly(statement) == 0, sqlite3_changes(db.sqliteConnection) > 0 else { return }
        capture.record(sql, repeat each values)
    }

    /// Maps every row the query returns.
    func rows<each Value: StoreBindable, T>(_ sql: StaticString, _ values: repeat each Value,
                                           as transform: (StoreRow) throws -> T) throws -> [T] {
        let statement = try prepared(sql, repeat each values)
        defer { finish(statement) }
        var results: [T] = []
        while true {
            let code = sqlite3_step(statement)
            if code == SQLITE_DONE {
                captureWrite(statement, sql, repeat each values)
                return results
            }
            guard code == SQLITE_ROW else { throw failure(code, sql) }
            results.append(try transform(StoreRow(statement: statement)))
        }
    }

    /// Maps the first row the query returns; nil when it returns none.
    func row<each Value: StoreBindable, T>(_ sql: StaticString, _ values: repeat each Value,
                                          as transform: (StoreRow) throws -> T) throws -> T? {
        let statement = try prepared(sql, repeat each values)
        defer { finish(statement) }
        let code = sqlite3_step(statement)
        if code == SQLITE_DONE {
            captureWrite(statement, sql, repeat each values)
            return nil
        }
        guard code == SQLITE_ROW else { throw failure(code, sql) }
        // Only reads return rows here (no statement of the store uses RETURNING).
        precondition(capture == nil || sqlite3_stmt_readonly(statement) != 0, "a write that returns rows is not captured")
        return try transform(StoreRow(statement: statement))
    }

    /// The first column of the first row; nil when there is no row or the value is NULL.
    func int<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws -> Int64? {
        try row(sql, repeat each values) { row in row[0] as Int64? } ?? nil
    }

    /// A count (`SELECT COUNT(*) ...`); 0 when the query returns nothing.
    func count<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws -> Int {
        Int(try int(sql, repeat each values) ?? 0)
    }

    private func prepared<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) throws -> OpaquePointer {
        let statement = try cache.statement(sql, in: db)
        // A statement that failed before may still hold its last step's state.
        sqlite3_reset(statement)
        var index: Int32 = 0
        for value in repeat each values {
            index += 1
            let code = value.bind(to: statement, at: index)
            guard code == SQLITE_OK else {
                sqlite3_clear_bindings(statement)
                throw failure(code, sql)
            }
        }
        guard index == sqlite3_bind_parameter_count(statement) else {
            sqlite3_clear_bindings(statement)
            throw DatabaseError(resultCode: .SQLITE_MISUSE,
                                message: "\(index) values for \(sqlite3_bind_parameter_count(statement)) parameters",
                                sql: sql.description)
        }
        return statement
    }

    private func finish(_ statement: OpaquePointer) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    private func failure(_ code: Int32, _ sql: StaticString) -> DatabaseError {
        DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)),
                      sql: sql.description)
    }
}

/// The current row of a running query; valid only inside the closure it is passed to.
struct StoreRow {
    let statement: OpaquePointer

    /// The value of column `index` (0-based), decoded as the type the caller asks for.
    subscript<T: StoreColumnValue>(_ index: Int32) -> T {
        T(statement: statement, column: index)
    }

    func isNull(_ index: Int32) -> Bool { sqlite3_column_type(statement, index) == SQLITE_NULL }
}

/// A Swift value bound to a statement parameter.
protocol StoreBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32
    /// Appends the value as `RedoCapture` encodes it.
    func appendRedo(to bytes: inout [UInt8])
}

/// A Swift value read from a column. NULL reads as 0, "" or empty unless the type is Optional.
protocol StoreColumnValue {
    init(statement: OpaquePointer, column: Int32)
}

/// SQLite copies the bound bytes during the call (they may point into a temporary buffer).
private var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }

extension Int: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 { sqlite3_bind_int64(statement, index, Int64(self)) }
    func appendRedo(to bytes: inout [UInt8]) { Int64(self).appendRedo(to: &bytes) }
    init(statement: OpaquePointer, column: Int32) { self = Int(sqlite3_column_int64(statement, column)) }
}

extension Int64: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 { sqlite3_bind_int64(statement, index, self) }
    func appendRedo(to bytes: inout [UInt8]) {
        bytes.append(1)
        bytes.appendVarint(UInt64(bitPattern: (self << 1) ^ (self >> 63)))
    }
    init(statement: OpaquePointer, column: Int32) { self = sqlite3_column_int64(statement, column) }
}

extension Double: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 { sqlite3_bind_double(statement, index, self) }
    func appendRedo(to bytes: inout [UInt8]) {
        bytes.append(2)
        let pattern = bitPattern
        for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: pattern >> UInt64(shift))) }
    }
    init(statement: OpaquePointer, column: Int32) { self = sqlite3_column_double(statement, column) }
}

extension Bool: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 { sqlite3_bind_int64(statement, index, self ? 1 : 0) }
    func appendRedo(to bytes: inout [UInt8]) { Int64(self ? 1 : 0).appendRedo(to: &bytes) }
    init(statement: OpaquePointer, column: Int32) { self = sqlite3_column_int64(statement, column) != 0 }
}

extension String: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        var text = self
        return text.withUTF8 { bytes in
            // An empty buffer may have no address, which SQLite would bind as NULL.
            guard let base = bytes.baseAddress else { return sqlite3_bind_text(statement, index, "", 0, transient) }
            return base.withMemoryRebound(to: CChar.self, capacity: bytes.count) { pointer in
                sqlite3_bind_text(statement, index, pointer, Int32(bytes.count), transient)
            }
        }
    }

    func appendRedo(to bytes: inout [UInt8]) {
        var text = self
        text.withUTF8 { bytes.appendRedoText(tag: 3, UnsafeRawBufferPointer($0)) }
    }

    init(statement: OpaquePointer, column: Int32) {
        guard let text = sqlite3_column_text(statement, column) else { self = ""; return }
        self = String(decoding: UnsafeBufferPointer(start: text, count: Int(sqlite3_column_bytes(statement, column))),
                      as: UTF8.self)
    }
}

extension [UInt8]: StoreBindable, StoreColumnValue {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        withUnsafeBytes { bytes in
            guard let base = bytes.baseAddress else { return sqlite3_bind_zeroblob(statement, index, 0) }
            return sqlite3_bind_blob(statement, index, base, Int32(bytes.count), transient)
        }
    }

    func appendRedo(to bytes: inout [UInt8]) {
        withUnsafeBytes { bytes.appendRedoText(tag: 4, $0) }
    }

    init(statement: OpaquePointer, column: Int32) {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let blob = sqlite3_column_blob(statement, column) else { self = []; return }
        self = Array(UnsafeRawBufferPointer(start: blob, count: count))
    }
}

extension Optional: StoreBindable where Wrapped: StoreBindable {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 {
        guard let value = self else { return sqlite3_bind_null(statement, index) }
        return value.bind(to: statement, at: index)
    }

    func appendRedo(to bytes: inout [UInt8]) {
        guard let value = self else { return bytes.append(0) }
        value.appendRedo(to: &bytes)
    }
}

extension Optional: StoreColumnValue where Wrapped: StoreColumnValue {
    init(statement: OpaquePointer, column: Int32) {
        self = sqlite3_column_type(statement, column) == SQLITE_NULL ? nil : Wrapped(statement: statement, column: column)
    }
}
