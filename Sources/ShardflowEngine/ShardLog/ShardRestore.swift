import Foundation
import Logging
import Synchronization

/// A shard's local store while it is brought up to date from the shard's log, before the shard runs.
///
/// The caller (the worker) reads the log with a `ShardLogReader` started at `localState()`, applies what
/// it returns (`apply`), starts over with `discard()` when the store diverged, and marks the end with
/// `finish(at:)`; `Shard.open(restored:writing:...)` then takes the store. The store's lock is held from
/// `open` on, so no other process on this host opens it meanwhile.
public final class ShardRestore: Sendable {
    public let shard: Int
    let directory: String
    let logger: Logger
    let metrics: EngineMetrics
    let signals: WorkSignals
    private let store: Mutex<ShardStore?>

    /// Opens (creating if needed) the shard's store. Throws `ShardError.locked` while another owner on
    /// this host holds it.
    public init(directory: String, shard: Int, logger: Logger = Logger(label: "shardflow.engine")) throws {
        guard shard >= 0 else { throw ShardError.io("shard number must not be negative (got \(shard))") }
        var shardLogger = logger
        shardLogger[metadataKey: "shard"] = "\(shard)"
        self.shard = shard
        self.directory = directory
        self.logger = shardLogger
        self.metrics = EngineMetrics(shard: shard)
        self.signals = WorkSignals()
        self.store = Mutex(try ShardStore(directory: directory, shard: shard, metrics: metrics, logger: shardLogger,
                                          signals: signals))
    }

    private func current() throws -> ShardStore {
        guard let store = store.withLock({ $0 }) else { throw ShardError.closed(shard: shard) }
        return store
    }

    /// Where the local store stands against the log (`.empty` for a new store).
    public func localState() throws -> ShardLogLocalState { try current().localLogState() }

    /// Replays changes the reader returned, in order, in one transaction (all or none). Throws
    /// `ShardError.logDoesNotReplay` when one fails on this store: it did not hold the log's history
    /// before them, and must be discarded.
    public func apply(_ changes: [ShardLogChange]) throws {
        try current().applyLogChanges(changes)
    }

    /// Deletes the local store and starts an empty one (its history differs from the log's).
    public func discard() throws {
        let old = try current()
        old.close()
        do {
            try Self.removeStoreFiles(at: old.path)
        } catch {
            throw ShardError.io("cannot delete the diverged store \(old.path): \(error)")
        }
        let fresh = try ShardStore(directory: directory, shard: shard, metrics: metrics, logger: logger, signals: signals)
        store.withLock { $0 = fresh }
    }

    /// Replaces the local store by a snapshot file (checked by the caller) holding the log's history up
    /// to `covers`; the restore reads on from there. A snapshot of an older schema is migrated.
    public func install(snapshot file: String, covers: ShardLogPosition) throws {
        let old = try current()
        let path = old.path
        old.close()
        do {
            try Self.removeStoreFiles(at: path)
            try FileManager.default.moveItem(atPath: file, toPath: path)
        } catch {
            throw ShardError.io("cannot install the snapshot \(file) as \(path): \(error)")
        }
        let fresh = try ShardStore(directory: directory, shard: shard, metrics: metrics, logger: logger, signals: signals)
        store.withLock { $0 = fresh }
        try fresh.writeLogState(ShardLogLocalState(checkpoint: covers, lastSeq: covers.seq, writerEpoch: covers.epoch))
    }

    /// A closed store's file and its WAL files.
    private static func removeStoreFiles(at path: String) throws {
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.removeItem(atPath: path + suffix)
        }
    }

    /// The store holds the log's history up to `position`, whose epoch is the restorer's own.
    public func finish(at position: ShardLogPosition) throws {
        try current().writeLogState(ShardLogLocalState(checkpoint: position, lastSeq: position.seq,
                                                       writerEpoch: position.epoch))
    }

    /// Gives the store up without running the shard (the restore was abandoned).
    public func close() {
        store.withLock { store in
            store?.close()
            store = nil
        }
    }

    /// The store, for `Shard.open(restored:...)`; the restore is over.
    func takeStore() throws -> ShardStore {
        guard let taken = store.withLock({ store -> ShardStore? in
            defer { store = nil }
            return store
        }) else { throw ShardError.closed(shard: shard) }
        return taken
    }
}
