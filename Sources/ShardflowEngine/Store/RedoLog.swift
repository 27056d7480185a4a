import GRDB
import GRDBSQLite

/// One transaction's writes as the shard log carries them: every insert, update and delete that
/// changed a row, as its SQL text and the values bound to it, in the order they ran.
///
/// Why statements and not row images: the engine already runs every write through `StoreConnection`
/// with its values at hand, so recording one costs a few appends, where SQLite's session extension
/// (the first version) looked up every changed row again and prepared statements of its own in every
/// transaction, which halved the engine's throughput. A statement replays to the same rows because a
/// copy that applies it holds the same rows before it (the reader only hands over the transaction
/// after the copy's last one, `ShardLogReader`), and nothing in a statement depends on anything
/// else: times are bound values, ids come from the tables (`INTEGER PRIMARY KEY`, `AUTOINCREMENT`
/// with its `sqlite_sequence`), every other table is `WITHOUT ROWID`. A statement that changed no
/// row is not recorded (it changed nothing), so a transaction that wrote nothing logs nothing.
///
/// Encoding, one entry per statement: a varint reference (0: the text follows, as a varint length
/// and UTF-8, and becomes the transaction's next statement; n: the transaction's n-th statement),
/// a varint count of values, then each value: a tag (0 NULL, 1 integer as a zigzag varint, 2 double
/// as its 8 bytes big-endian, 3 text, 4 blob, each with a varint length).
final class RedoCapture {
    private(set) var bytes: [UInt8] = []
    /// Statements already written in this transaction, by the address of their static text.
    private var known: [UnsafeRawPointer: Int] = [:]

    init() {
        bytes.reserveCapacity(1_024)
    }

    var isEmpty: Bool { bytes.isEmpty }

    func record<each Value: StoreBindable>(_ sql: StaticString, _ values: repeat each Value) {
        let key = UnsafeRawPointer(sql.utf8Start)
        if let index = known[key] {
            bytes.appendVarint(UInt64(index + 1))
        } else {
            known[key] = known.count
            bytes.appendVarint(0)
            bytes.appendVarint(UInt64(sql.utf8CodeUnitCount))
            bytes.append(contentsOf: UnsafeBufferPointer(start: sql.utf8Start, count: sql.utf8CodeUnitCount))
        }
        var count: UInt64 = 0
        for _ in repeat each values { count += 1 }
        bytes.appendVarint(count)
        for value in repeat each values { value.appendRedo(to: &bytes) }
    }
}

/// A redo entry's statement did not replay: the copy's rows are not the writer's (or the record is
/// not one this version reads). The restore treats the copy as diverged.
struct RedoReplayError: Error, CustomStringConvertible {
    var description: String
}

/// Replays what `RedoCapture` recorded, on the connection of a transaction the caller opened.
enum RedoReplay {
    static func apply(_ redo: [UInt8], seq: Int64, on db: Database, cache: StatementCache) throws {
        var reader = RedoByteReader(redo)
        var statements: [OpaquePointer] = []
        var texts: [String] = []
        while !reader.atEnd {
            let reference = try reader.varint()
            let statement: OpaquePointer
            let text: String
            if reference == 0 {
                text = String(decoding: try reader.bytes(try reader.varint()), as: UTF8.self)
                statement = try cache.replayStatement(text, in: db, seq: seq)
                statements.append(statement)
                texts.append(text)
            } else {
                guard reference <= UInt64(statements.count) else {
                    throw RedoReplayError(description: "transaction \(seq): statement \(reference) before its text")
                }
                let index = Int(reference - 1)
                statement = statements[index]
                text = texts[index]
            }
            let count = try reader.varint()
            guard count == UInt64(sqlite3_bind_parameter_count(statement)) else {
                throw RedoReplayError(description: "transaction \(seq): \(count) values for the \(sqlite3_bind_parameter_count(statement)) parameters of \(text)")
            }
            sqlite3_reset(statement)
            defer {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            }
            var index: Int32 = 0
            while index < Int32(count) {
                index += 1
                let code = try reader.bind(to: statement, at: index)
                guard code == SQLITE_OK else { throw RedoReplayError(description: "transaction \(seq): binding a value failed (\(code))") }
            }
            var code = sqlite3_step(statement)
            while code == SQLITE_ROW { code = sqlite3_step(statement) }
            guard code == SQLITE_DONE else {
                let message = String(cString: sqlite3_errmsg(db.sqliteConnection))
                throw RedoReplayError(description: "transaction \(seq) does not replay: \(message) in \(text)")
            }
        }
    }
}

/// SQLite copies the bound bytes during the call (they point into the record).
private var transient: sqlite3_destructor_type { unsafeBitCast(-1, to: sqlite3_destructor_type.self) }

private struct RedoByteReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var atEnd: Bool { position >= bytes.count }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.count else { throw RedoReplayError(description: "redo record truncated") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let next = try byte()
            guard shift < 64 else { throw RedoReplayError(description: "redo varint too long") }
            value |= UInt64(next & 0x7F) << shift
            if next & 0x80 == 0 { return value }
            shift += 7
        }
    }

    /// The next `count` bytes (a length read from the record: any value, so compared before it is an Int).
    mutating func bytes(_ count: UInt64) throws -> ArraySlice<UInt8> {
        guard count <= UInt64(bytes.count - position) else { throw RedoReplayError(description: "redo record truncated") }
        let end = position + Int(count)
        defer { position = end }
        return bytes[position..<end]
    }

    /// Reads one value and binds it.
    mutating func bind(to statement: OpaquePointer, at index: Int32) throws -> Int32 {
        switch try byte() {
        case 0:
            return sqlite3_bind_null(statement, index)
        case 1:
            let zigzag = try varint()
            return sqlite3_bind_int64(statement, index, Int64(bitPattern: (zigzag >> 1) ^ (0 &- (zigzag & 1))))
        case 2:
            var pattern: UInt64 = 0
            for byte in try bytes(8) { pattern = pattern << 8 | UInt64(byte) }
            return sqlite3_bind_double(statement, index, Double(bitPattern: pattern))
        case 3:
            let slice = try bytes(try varint())
            // An empty text still needs an address: SQLite binds a NULL pointer as NULL.
            if slice.isEmpty { return sqlite3_bind_text(statement, index, "", 0, transient) }
            return slice.withUnsafeBytes { raw in
                sqlite3_bind_text(statement, index, raw.baseAddress!.assumingMemoryBound(to: CChar.self),
                                  Int32(raw.count), transient)
            }
        case 4:
            let slice = try bytes(try varint())
            if slice.isEmpty { return sqlite3_bind_zeroblob(statement, index, 0) }
            return slice.withUnsafeBytes { raw in
                sqlite3_bind_blob(statement, index, raw.baseAddress, Int32(raw.count), transient)
            }
        case let tag:
            throw RedoReplayError(description: "redo value of unknown type \(tag)")
        }
    }
}

extension [UInt8] {
    mutating func appendVarint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        append(UInt8(rest))
    }

    mutating func appendRedoText(tag: UInt8, _ bytes: UnsafeRawBufferPointer) {
        append(tag)
        appendVarint(UInt64(bytes.count))
        append(contentsOf: bytes)
    }
}
