import Crypto
import Foundation
import Logging
import ShardflowEngine
import ShardflowKafka

/// Snapshots of shard stores in `<prefix>.shard-snapshots` (partition p: shard p). A snapshot is the
/// store file (`VACUUM INTO`) in chunks under 1 MB, then a footer written on its own: its chunks' first
/// offset, size, SHA-256 and the log position the file covers. The newest snapshot is found from the
/// partition's end: the footer, alone in its batch, is the record just below the high watermark (also
/// on a broker that reports the high watermark as the last batch's base offset + 1).
struct ShardSnapshots: Sendable {
    let topic: String
    let client: ShardLogClient
    let configuration: KafkaConfiguration
    let logger: Logger

    private var producer: KafkaProducer { client.producer }

    /// Publishes the snapshot file; returns its footer once the broker has it.
    func publish(shard: Int, file: String, covers: ShardLogPosition) async throws -> ShardSnapshotFooter {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: file)))
        let id = UInt64.random(in: 1...UInt64.max)
        let size = ShardLogRecord.maxFragmentBytes
        let chunks = stride(from: 0, to: max(bytes.count, 1), by: size).enumerated().map { index, start in
            KafkaProducerMessage(topic: topic, partition: Int32(shard), key: nil, value: ShardLogRecord.snapshotChunk(
                ShardSnapshotChunk(snapshot: id, index: index, bytes: Array(bytes[start..<min(bytes.count, start + size)]))).encoded())
        }
        let reports = await producer.sendAll(chunks)
        var first: Int64?
        for report in reports {
            let delivered = try report.get()
            first = min(first ?? delivered.offset, delivered.offset)
        }
        let footer = ShardSnapshotFooter(
            snapshot: id, firstOffset: first ?? 0, chunks: chunks.count, size: Int64(bytes.count), covers: covers,
            at: Int64(Date().timeIntervalSince1970 * 1000), sha256: Array(SHA256.hash(data: bytes)))
        _ = try await producer.send(KafkaProducerMessage(topic: topic, partition: Int32(shard), key: nil,
                                                         value: ShardLogRecord.snapshotFooter(footer).encoded()))
        return footer
    }

    /// Downloads shard `shard`'s newest snapshot to `file` and checks it. Nil when the partition ends in
    /// no footer (none written yet, or a snapshot cut short) or the file does not match its footer: the
    /// caller then reads the whole log.
    func fetchNewest(shard: Int, to file: String) async throws -> ShardSnapshotFooter? {
        // Most partitions have none: learn that without a consumer of its own.
        let (low, high) = try await client.watermarks(topic: topic, partition: Int32(shard))
        guard high > max(low, 0) else { return nil }
        let consumer = try KafkaPartitionConsumer(configuration: configuration, options: KafkaConsumerOptions(maxBatch: 64),
                                                  logger: logger)
        // A broker that does not answer must not hold the restore: it then reads the whole log.
        let timer = Task {
            try? await Task.sleep(for: .seconds(30))
            await consumer.close()
        }
        defer {
            timer.cancel()
            Task { await consumer.close() }
        }
        let partition = Int32(shard)
        try await consumer.assign([TopicPartitionOffset(topic: topic, partition: partition, offset: high - 1)])
        var footer: ShardSnapshotFooter?
        var chunks: [Int: [UInt8]] = [:]
        reading: for await event in consumer.events {
            guard case .messages(let messages) = event else { continue }
            for message in messages {
                guard let record = try? ShardLogRecord(decoding: message.value) else { continue }
                switch record {
                case .snapshotFooter(let found) where footer == nil:
                    footer = found
                    try await consumer.unassign([TopicPartition(topic: topic, partition: partition)])
                    try await consumer.assign([TopicPartitionOffset(topic: topic, partition: partition, offset: found.firstOffset)])
                    continue reading
                case .snapshotChunk(let chunk) where chunk.snapshot == footer?.snapshot:
                    chunks[chunk.index] = chunk.bytes
                    if chunks.count == footer?.chunks { break reading }
                default:
                    if footer == nil {
                        logger.warning("shard \(shard): the snapshots partition does not end in a footer (a snapshot cut short); restoring from the whole log")
                        return nil
                    }
                }
            }
        }
        guard let footer, chunks.count == footer.chunks else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(footer.size))
        for index in 0..<footer.chunks { bytes.append(contentsOf: chunks[index] ?? []) }
        guard bytes.count == footer.size, Array(SHA256.hash(data: bytes)) == footer.sha256 else {
            logger.error("shard \(shard): snapshot \(footer.snapshot) does not match its footer (size or SHA-256); restoring from the whole log")
            return nil
        }
        try Data(bytes).write(to: URL(fileURLWithPath: file))
        return footer
    }
}
