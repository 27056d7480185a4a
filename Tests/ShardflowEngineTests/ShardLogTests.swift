import Foundation
import GRDB
import ShardflowJSON
import Synchronization
import Testing
@testable import ShardflowEngine

/// Collects the changes a shard hands to its log, in order.
final class CollectingSink: ShardLogSink {
    let changes = Mutex<[ShardLogChange]>([])
    func append(_ change: ShardLogChange) { changes.withLock { $0.append(change) } }
    var all: [ShardLogChange] { changes.withLock { $0 } }
}

/// A log in memory: records at offsets 0, 1, 2, ...
struct MemoryLog {
    var records: [[UInt8]] = []
    mutating func claim(_ nonce: UInt64) { records.append(ShardLogRecord.claim(ShardLogClaim(owner: "test", nonce: nonce, at: 0)).encoded()) }
    mutating func change(epoch: Int64, seq: Int64, _ bytes: [UInt8] = [1, 2, 3]) {
        records.append(ShardLogRecord.change(ShardLogFragment(epoch: epoch, seq: seq, index: 0, count: 1, bytes: bytes)).encoded())
    }
    func read(into reader: inout ShardLogReader, from offset: Int = 0) -> [ShardLogReader.Event] {
        records.indices.dropFirst(offset).map { reader.read(offset: Int64($0), value: records[$0]) }.filter { $0 != .none }
    }
}

@Suite struct ShardLogTests {
    @Test func recordsRoundTripAndLargeChangesAreSplitIntoFragments() throws {
        let claim = ShardLogRecord.claim(ShardLogClaim(owner: "worker-1@host", nonce: 42, at: 1_700))
        #expect(try ShardLogRecord(decoding: claim.encoded()) == claim)
        let change = ShardLogChange(epoch: 3, seq: 9, redo: Array(repeating: 7, count: 2_500))
        let records = ShardLogRecord.records(of: change, maxFragmentBytes: 1_000)
        #expect(records.count == 3)
        #expect(records.allSatisfy { $0.encoded().count <= 1_000 + 27 })
        var reader = ShardLogReader(local: .empty, ownClaim: 1)
        var events: [ShardLogReader.Event] = []
        var log = MemoryLog()
        log.claim(5)
        log.records += records.map { $0.encoded() }
        events = log.read(into: &reader)
        // Written in epoch 3 while epoch 1 is in force: ignored, whole.
        #expect(events.isEmpty)
        var valid = MemoryLog()
        valid.claim(5)
        valid.records += ShardLogRecord.records(of: ShardLogChange(epoch: 1, seq: 1, redo: change.redo), maxFragmentBytes: 1_000).map { $0.encoded() }
        var second = ShardLogReader(local: .empty, ownClaim: 1)
        #expect(valid.read(into: &second) == [.apply(ShardLogChange(epoch: 1, seq: 1, redo: change.redo))])
        #expect(throws: ShardLogRecordError.notAShardLogRecord) { try ShardLogRecord(decoding: [0x7b, 0x7d]) }
        #expect(throws: ShardLogRecordError.truncated) { try ShardLogRecord(decoding: Array(claim.encoded().prefix(6))) }
        #expect(throws: ShardLogRecordError.unknownFormat(9)) { try ShardLogRecord(decoding: [0x53, 9, 1]) }
    }

    @Test func restoringAppliesTheValidHistoryAndIgnoresAZombieAfterANewerClaim() {
        var log = MemoryLog()
        log.claim(11)                      // epoch 1: worker A
        log.change(epoch: 1, seq: 1)
        log.change(epoch: 1, seq: 2)
        log.claim(22)                      // epoch 2: worker B
        log.change(epoch: 1, seq: 3)       // A, paused past its session, writes on: ignored
        log.change(epoch: 2, seq: 3)
        log.change(epoch: 2, seq: 5)       // a gap: ignored
        log.claim(33)                      // epoch 3: this reader
        var reader = ShardLogReader(local: .empty, ownClaim: 33)
        let events = log.read(into: &reader)
        #expect(events.map { if case .apply(let change) = $0 { return "\(change.epoch)/\(change.seq)" } else { return "\($0)" } }
                == ["1/1", "1/2", "2/3", "restored(epoch: 3, seq: 3)"])
        #expect(reader.phase == .following)
        #expect(reader.checkpoint == ShardLogPosition(offset: 7, epoch: 3, seq: 3))
        // Following: its own next change is confirmed, a later claim fences it.
        log.change(epoch: 2, seq: 4)       // B, a zombie now: ignored
        log.change(epoch: 3, seq: 4)
        log.change(epoch: 3, seq: 4)       // sent again after a failed batch: a copy, ignored
        log.change(epoch: 3, seq: 5)
        log.claim(44)
        #expect(log.read(into: &reader, from: 8) == [.confirmed(seq: 4), .confirmed(seq: 5), .fenced(ShardLogClaim(owner: "test", nonce: 44, at: 0))])
        #expect(reader.phase == .stopped)
        // A gap in the owner's own records: its store is ahead of the log.
        var gap = MemoryLog()
        gap.claim(1)
        gap.change(epoch: 1, seq: 1)
        gap.change(epoch: 1, seq: 3)
        var gapReader = ShardLogReader(local: .empty, ownClaim: 1)
        guard case .diverged = gap.read(into: &gapReader).last else { Issue.record("a gap in the owner's records diverged"); return }
    }

    @Test func aStoreThatIsCurrentRestoresNothingAndOneAheadOfTheLogDiverged() {
        var log = MemoryLog()
        log.claim(1)
        log.change(epoch: 1, seq: 1)
        log.change(epoch: 1, seq: 2)
        // The store read back seq 1 (its checkpoint) and committed seq 2 after it, in epoch 1.
        let current = ShardLogLocalState(checkpoint: ShardLogPosition(offset: 1, epoch: 1, seq: 1), lastSeq: 2, writerEpoch: 1)
        var reopened = log
        reopened.claim(2)
        var reader = ShardLogReader(local: current, ownClaim: 2)
        #expect(reopened.read(into: &reader) == [.restored(epoch: 2, seq: 2)])
        #expect(reader.changesApplied == 0)
        // The same store, with seq 3 committed locally whose record never reached the broker.
        let ahead = ShardLogLocalState(checkpoint: current.checkpoint, lastSeq: 3, writerEpoch: 1)
        var aheadReader = ShardLogReader(local: ahead, ownClaim: 2)
        guard case .diverged = reopened.read(into: &aheadReader).last else { Issue.record("a store ahead of the log diverged"); return }
        // A store whose seq 2 was written in an epoch the log says lost: diverged.
        var lost = MemoryLog()
        lost.claim(1)
        lost.change(epoch: 1, seq: 1)
        lost.claim(9)
        lost.change(epoch: 2, seq: 2)
        lost.claim(2)
        var lostReader = ShardLogReader(local: current, ownClaim: 2)
        guard case .diverged = lost.read(into: &lostReader).first else { Issue.record("a store with a lost epoch's seq diverged"); return }
    }

    @Test func aRestoredStoreHoldsExactlyTheRowsOfTheStoreThatWroteTheLog() async throws {
        let original = TemporaryDirectory()
        let copy = TemporaryDirectory()
        defer { original.cleanup(); copy.cleanup() }
        let sink = CollectingSink()
        let restore = try ShardRestore(directory: original.path, shard: 0)
        try restore.finish(at: ShardLogPosition(offset: 0, epoch: 1, seq: 0))
        let shard = try await Shard.open(restored: restore, writing: ShardLogWriting(epoch: 1, sink: sink),
                                         registry: testRegistry())
        try shard.start()
        var factory = MessageFactory()
        var messages: [InboundMessage] = []
        for index in 0..<20 { messages.append(factory.start("s-\(index)", "sequential", .int(Int64(index)))) }
        for index in 0..<10 { messages.append(factory.start("p-\(index)", "parallel", .int(Int64(index)))) }
        messages.append(factory.start("f-1", "failing", .string("no")))
        messages.append(factory.start("w-1", "waiter", .int(0)))
        messages.append(factory.start("w-2", "waiter", .int(0)))
        messages.append(factory.start("z-1", "sleeper", .int(3_600)))
        _ = try await shard.ingest(messages)
        _ = try await shard.ingest([
            factory.raw(try EventMessage(workflowId: "w-1", name: "approval", value: .string("yes")).contractJSON(), key: "w-1"),
            factory.raw(try CancelMessage(workflowId: "w-2", reason: "not needed").contractJSON(), key: "w-2"),
        ])
        let reader = OutboxReader(shard)
        // The gate: nothing goes out before the log confirms it.
        try await Task.sleep(for: .milliseconds(200))
        #expect(try shard.pendingOutbox().isEmpty)
        let deadline = ContinuousClock.now.advanced(by: .seconds(20))
        while reader.completions.count < 33 && ContinuousClock.now < deadline {
            shard.confirmLog(through: sink.all.last?.seq ?? 0)
            try reader.drain()
            try await Task.sleep(for: .milliseconds(5))
        }
        #expect(reader.completions.count == 33)
        await shard.close()
        let changes = sink.all
        #expect(changes.map(\.seq) == Array(1...Int64(changes.count)))
        #expect(changes.allSatisfy { $0.epoch == 1 })

        let restored = try ShardRestore(directory: copy.path, shard: 0)
        try restored.apply(changes)
        try restored.finish(at: ShardLogPosition(offset: 99, epoch: 2, seq: changes.last!.seq))
        restored.close()
        let want = try dump(original.path)
        let got = try dump(copy.path)
        #expect(want.keys.sorted() == got.keys.sorted())
        for table in want.keys.sorted() { #expect(got[table] == want[table], "table \(table)") }
        #expect(want["workflows"]?.count == 34)
        #expect(want["timers"]?.count == 1)
    }

    @Test func aSnapshotInstalledInAnEmptyStoreHoldsTheSameRowsAndItsLogPosition() async throws {
        let original = TemporaryDirectory()
        let copy = TemporaryDirectory()
        defer { original.cleanup(); copy.cleanup() }
        let sink = CollectingSink()
        let restore = try ShardRestore(directory: original.path, shard: 0)
        try restore.finish(at: ShardLogPosition(offset: 0, epoch: 1, seq: 0))
        let shard = try await Shard.open(restored: restore, writing: ShardLogWriting(epoch: 1, sink: sink), registry: testRegistry())
        try shard.start()
        var factory = MessageFactory()
        _ = try await shard.ingest((0..<10).map { factory.start("s-\($0)", "sequential", .int(Int64($0))) })
        try await eventually { try shard.stats().workflowsByStatus["succeeded"] == 10 }
        try FileManager.default.createDirectory(atPath: copy.path, withIntermediateDirectories: true)
        let file = copy.path + "/snapshot"
        let taken = try shard.writeSnapshot(to: file)
        #expect(taken.lastSeq == sink.all.last?.seq)
        await shard.close()
        let restored = try ShardRestore(directory: copy.path, shard: 0)
        let covers = ShardLogPosition(offset: 41, epoch: 1, seq: taken.lastSeq)
        try restored.install(snapshot: file, covers: covers)
        #expect(try restored.localState() == ShardLogLocalState(checkpoint: covers, lastSeq: covers.seq, writerEpoch: 1))
        restored.close()
        #expect(try dump(copy.path) == dump(original.path))
    }

    @Test func redoCarriesEveryValueTypeExactly() throws {
        let schema = "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, d REAL, s TEXT, b BLOB, n TEXT)"
        let source = try DatabaseQueue()
        let target = try DatabaseQueue()
        try source.write { try $0.execute(sql: schema) }
        try target.write { try $0.execute(sql: schema) }
        let capture = RedoCapture()
        let cache = StatementCache()
        try source.write { db in
            let connection = StoreConnection(db: db, cache: cache, capture: capture)
            let rows: [(Int64, Double, String, [UInt8], String?)] = [
                (.min, -0.1, "", [], nil), (.max, .greatestFiniteMagnitude, "naïve ☃︎ \u{0}x", [0, 255, 7], "x"),
                (0, 1e-300, String(repeating: "é", count: 300), Array(repeating: 9, count: 200), ""),
            ]
            for (index, row) in rows.enumerated() {
                try connection.run("INSERT INTO t (id, i, d, s, b, n) VALUES (?, ?, ?, ?, ?, ?)", index, row.0, row.1, row.2, row.3, row.4)
            }
            // Changes nothing, so it is not recorded.
            try connection.run("UPDATE t SET i = 1 WHERE id = ?", 99)
            try connection.run("UPDATE t SET d = d * 2 WHERE id = ?", 1 as Int)
            try connection.run("DELETE FROM t WHERE id = ?", 0 as Int)
            cache.removeAll()
        }
        let replayCache = StatementCache()
        try target.write { db in
            try RedoReplay.apply(capture.bytes, seq: 1, on: db, cache: replayCache)
            replayCache.removeAll()
        }
        let dump = { (queue: DatabaseQueue) in
            try queue.read { db in try Row.fetchAll(db, sql: "SELECT id, i, d, s, b, n, typeof(n), quote(d) FROM t ORDER BY id").map(\.description) }
        }
        #expect(try dump(target) == dump(source))
        #expect(try dump(target).count == 2)
    }

    @Test func aLoggedTransactionThatDoesNotReplayIsRefusedAndNothingOfItsBatchApplied() throws {
        let directory = TemporaryDirectory()
        defer { directory.cleanup() }
        let restore = try ShardRestore(directory: directory.path, shard: 0)
        defer { restore.close() }
        /// One redo entry of a statement without values.
        func redo(_ statements: String...) -> [UInt8] {
            var bytes: [UInt8] = []
            for sql in statements {
                bytes.appendVarint(0)
                bytes.appendVarint(UInt64(sql.utf8.count))
                bytes += Array(sql.utf8)
                bytes.appendVarint(0)
            }
            return bytes
        }
        let good = ShardLogChange(epoch: 1, seq: 1, redo: redo("UPDATE shard_meta SET completionSeq = 5 WHERE id = 1"))
        let refused: [(String, [UInt8])] = [
            ("not an insert, update or delete", redo("DROP TABLE workflows")),
            ("Multiple statements", redo("DELETE FROM journal; DROP TABLE workflows")),
            ("UNIQUE constraint failed", redo("INSERT INTO shard_meta (id, shard) VALUES (1, 0)")),
            ("truncated", Array(redo("DELETE FROM journal").dropLast(3))),
            ("values for the 1 parameters", redo("DELETE FROM journal WHERE workflowId = ?")),
            // Lengths and references beyond any record (they must not trap on the way to an Int).
            ("truncated", [0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
            ("before its text", [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0]),
            ("truncated", redo("DELETE FROM journal WHERE workflowId = ?").dropLast() + [1, 3, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
        ]
        for (reason, bytes) in refused {
            #expect {
                try restore.apply([good, ShardLogChange(epoch: 1, seq: 2, redo: bytes)])
            } throws: { error in
                guard case ShardError.logDoesNotReplay(_, let said) = error else { return false }
                return said.contains(reason)
            }
            #expect(try restore.localState().lastSeq == 0, "\(reason)")
        }
        try restore.apply([good])
        #expect(try restore.localState().lastSeq == 1)
    }

    /// Every row of every table but the log's own state, as text, by table.
    private func dump(_ directory: String) throws -> [String: [String]] {
        let queue = try DatabaseQueue(path: URL(fileURLWithPath: directory).appendingPathComponent(Shard.storeFileName(shard: 0)).path)
        return try queue.read { db in
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('shard_log_state', 'grdb_migrations')")
            var out: [String: [String]] = [:]
            for table in tables {
                out[table] = try Row.fetchAll(db, sql: "SELECT * FROM \(table)").map(\.description).sorted()
            }
            return out
        }
    }
}
