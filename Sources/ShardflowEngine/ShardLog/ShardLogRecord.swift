/// A record of a shard's log (`<prefix>.shard-log`, partition p for shard p).
///
/// - `change`: the redo (statements and values) of one committed store transaction, written by the owner of `epoch` as the
///   shard's `seq`-th transaction. A transaction larger than one Kafka message is split into fragments
///   with the same epoch and seq, written back to back.
/// - `claim`: a worker takes the shard. Epochs are not numbers a claimer picks but positions: the n-th
///   claim in the partition opens epoch n. Two workers that claim at once get different epochs by the
///   order the broker stored their claims in, and every reader counts the same.
///
/// Binary, big-endian: `S`, format 2, kind, then the fields. A record that does not parse is reported
/// and skipped (nothing else writes to this topic; it is never applied). Format 1 carried SQLite session
/// patchsets instead of redo; no release wrote it, and this version reports it unreadable.
public enum ShardLogRecord: Sendable, Equatable {
    case change(ShardLogFragment)
    case claim(ShardLogClaim)
    /// A piece of a snapshot of the store (`<prefix>.shard-snapshots`, never in the log itself).
    case snapshotChunk(ShardSnapshotChunk)
    /// The last record of a snapshot, written on its own after its chunks: what it covers and how to check it.
    case snapshotFooter(ShardSnapshotFooter)

    static let magic: UInt8 = 0x53
    static let format: UInt8 = 2

    /// The largest redo bytes one record carries: with the header, under librdkafka's and Apache
    /// Kafka's default 1 MB message limit.
    public static let maxFragmentBytes = 900_000

    public func encoded() -> [UInt8] {
        var out: [UInt8] = [Self.magic, Self.format]
        switch self {
        case .change(let fragment):
            out.reserveCapacity(27 + fragment.bytes.count)
            out.append(1)
            out.appendBigEndian(fragment.epoch)
            out.appendBigEndian(fragment.seq)
            out.appendBigEndian(UInt32(fragment.index))
            out.appendBigEndian(UInt32(fragment.count))
            out.append(contentsOf: fragment.bytes)
        case .claim(let claim):
            out.append(2)
            out.appendBigEndian(claim.nonce)
            out.appendBigEndian(claim.at)
            let owner = Array(claim.owner.utf8.prefix(1_000))
            out.appendBigEndian(UInt16(owner.count))
            out.append(contentsOf: owner)
        case .snapshotChunk(let chunk):
            out.append(3)
            out.appendBigEndian(chunk.snapshot)
            out.appendBigEndian(UInt32(chunk.index))
            out.append(contentsOf: chunk.bytes)
        case .snapshotFooter(let footer):
            out.append(4)
            out.appendBigEndian(footer.snapshot)
            out.appendBigEndian(footer.firstOffset)
            out.appendBigEndian(UInt32(footer.chunks))
            out.appendBigEndian(footer.size)
            out.appendBigEndian(footer.covers.offset)
            out.appendBigEndian(footer.covers.epoch)
            out.appendBigEndian(footer.covers.seq)
            out.appendBigEndian(footer.at)
            out.append(contentsOf: footer.sha256.prefix(32))
        }
        return out
    }

    public init(decoding bytes: [UInt8]) throws(ShardLogRecordError) {
        var reader = ByteReader(bytes)
        guard try reader.byte() == Self.magic else { throw .notAShardLogRecord }
        let format = try reader.byte()
        guard format == Self.format else { throw .unknownFormat(format) }
        switch try reader.byte() {
        case 1:
            let epoch: Int64 = try reader.integer()
            let seq: Int64 = try reader.integer()
            let index: UInt32 = try reader.integer()
            let count: UInt32 = try reader.integer()
            guard count > 0, index < count else { throw .truncated }
            self = .change(ShardLogFragment(epoch: epoch, seq: seq, index: Int(index), count: Int(count),
                                            bytes: reader.rest()))
        case 2:
            let nonce: UInt64 = try reader.integer()
            let at: Int64 = try reader.integer()
            let length: UInt16 = try reader.integer()
            let owner = try reader.bytes(Int(length))
            self = .claim(ShardLogClaim(owner: String(decoding: owner, as: UTF8.self), nonce: nonce, at: at))
        case 3:
            let snapshot: UInt64 = try reader.integer()
            let index: UInt32 = try reader.integer()
            self = .snapshotChunk(ShardSnapshotChunk(snapshot: snapshot, index: Int(index), bytes: reader.rest()))
        case 4:
            let snapshot: UInt64 = try reader.integer()
            let firstOffset: Int64 = try reader.integer()
            let chunks: UInt32 = try reader.integer()
            let size: Int64 = try reader.integer()
            let offset: Int64 = try reader.integer()
            let epoch: Int64 = try reader.integer()
            let seq: Int64 = try reader.integer()
            let at: Int64 = try reader.integer()
            let sha256 = try reader.bytes(32)
            self = .snapshotFooter(ShardSnapshotFooter(
                snapshot: snapshot, firstOffset: firstOffset, chunks: Int(chunks), size: size,
                covers: ShardLogPosition(offset: offset, epoch: epoch, seq: seq), at: at, sha256: sha256))
        case let kind:
            throw .unknownKind(kind)
        }
    }

    /// The records of one transaction's change: one, or fragments of at most `maxFragmentBytes`.
    public static func records(of change: ShardLogChange, maxFragmentBytes: Int = maxFragmentBytes) -> [ShardLogRecord] {
        let size = max(1, maxFragmentBytes)
        let count = max(1, (change.redo.count + size - 1) / size)
        return (0..<count).map { index in
            let start = index * size
            let end = min(change.redo.count, start + size)
            return .change(ShardLogFragment(epoch: change.epoch, seq: change.seq, index: index, count: count,
                                            bytes: Array(change.redo[start..<end])))
        }
    }
}

/// One piece of a snapshot file.
public struct ShardSnapshotChunk: Sendable, Equatable {
    public var snapshot: UInt64
    public var index: Int
    public var bytes: [UInt8]

    public init(snapshot: UInt64, index: Int, bytes: [UInt8]) {
        self.snapshot = snapshot
        self.index = index
        self.bytes = bytes
    }
}

/// A snapshot's closing record: its chunks start at `firstOffset` of the snapshots partition; the file
/// (`size` bytes, `sha256`) holds the shard's history up to `covers` in its log.
public struct ShardSnapshotFooter: Sendable, Equatable {
    public var snapshot: UInt64
    public var firstOffset: Int64
    public var chunks: Int
    public var size: Int64
    public var covers: ShardLogPosition
    /// When it was taken (milliseconds since 1970): its age is a metric.
    public var at: Int64
    public var sha256: [UInt8]

    public init(snapshot: UInt64, firstOffset: Int64, chunks: Int, size: Int64, covers: ShardLogPosition, at: Int64,
                sha256: [UInt8]) {
        self.snapshot = snapshot
        self.firstOffset = firstOffset
        self.chunks = chunks
        self.size = size
        self.covers = covers
        self.at = at
        self.sha256 = sha256
    }
}

/// One record's part of a transaction's change.
public struct ShardLogFragment: Sendable, Equatable {
    public var epoch: Int64
    public var seq: Int64
    public var index: Int
    public var count: Int
    public var bytes: [UInt8]
}

/// A worker's claim of a shard. `nonce` tells the claimer its own claim when it reads it back.
public struct ShardLogClaim: Sendable, Equatable {
    /// Who claims (worker name and host), for operators.
    public var owner: String
    public var nonce: UInt64
    /// When (milliseconds since 1970), for operators.
    public var at: Int64

    public init(owner: String, nonce: UInt64 = .random(in: 1...UInt64.max), at: Int64) {
        self.owner = owner
        self.nonce = nonce
        self.at = at
    }
}

public enum ShardLogRecordError: Error, Equatable, CustomStringConvertible {
    case notAShardLogRecord
    case unknownFormat(UInt8)
    case unknownKind(UInt8)
    case truncated

    public var description: String {
        switch self {
        case .notAShardLogRecord: "not a shard-log record (bad magic byte)"
        case .unknownFormat(let format): "shard-log record format \(format) is not known to this version"
        case .unknownKind(let kind): "shard-log record kind \(kind) is not known to this version"
        case .truncated: "shard-log record is truncated"
        }
    }
}

private struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    mutating func byte() throws(ShardLogRecordError) -> UInt8 {
        guard position < bytes.count else { throw .truncated }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func integer<T: FixedWidthInteger>() throws(ShardLogRecordError) -> T {
        let size = MemoryLayout<T>.size
        guard position + size <= bytes.count else { throw .truncated }
        var value: T = 0
        for byte in bytes[position..<position + size] { value = value << 8 | T(byte) }
        position += size
        return value
    }

    mutating func bytes(_ count: Int) throws(ShardLogRecordError) -> [UInt8] {
        guard position + count <= bytes.count else { throw .truncated }
        defer { position += count }
        return Array(bytes[position..<position + count])
    }

    func rest() -> [UInt8] { Array(bytes[position...]) }
}

extension [UInt8] {
    fileprivate mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        var big = value.bigEndian
        Swift.withUnsafeBytes(of: &big) { append(contentsOf: $0) }
    }
}
