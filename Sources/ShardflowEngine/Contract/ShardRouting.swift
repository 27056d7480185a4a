/// Which partition (shard) a workflowId belongs to: Kafka's murmur2 partitioner, as the Java client's
/// default and librdkafka's `murmur2_random` compute it: `(murmur2(key) & 0x7fffffff) % partitions`.
public enum ShardRouting {
    /// The shard of `workflowId` in a workflows topic of `partitionCount` partitions.
    public static func partition(ofWorkflowId workflowId: String, partitionCount: Int) -> Int {
        partition(ofKey: Array(workflowId.utf8), partitionCount: partitionCount)
    }

    public static func partition(ofKey key: [UInt8], partitionCount: Int) -> Int {
        precondition(partitionCount > 0, "a topic has at least one partition")
        return Int(UInt32(bitPattern: murmur2(key)) & 0x7fff_ffff) % partitionCount
    }

    /// Kafka's murmur2 (seed 0x9747b28c), as `org.apache.kafka.common.utils.Utils.murmur2`.
    public static func murmur2(_ data: [UInt8]) -> Int32 {
        let m: UInt32 = 0x5bd1_e995
        let r: UInt32 = 24
        let length = data.count
        var h: UInt32 = 0x9747_b28c ^ UInt32(truncatingIfNeeded: length)
        var index = 0
        while index + 4 <= length {
            var k = UInt32(data[index]) | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2]) << 16
                | UInt32(data[index + 3]) << 24
            k &*= m
            k ^= k >> r
            k &*= m
            h &*= m
            h ^= k
            index += 4
        }
        let tail = length & ~3
        switch length % 4 {
        case 3:
            h ^= UInt32(data[tail + 2]) << 16
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 2:
            h ^= UInt32(data[tail + 1]) << 8
            h ^= UInt32(data[tail])
            h &*= m
        case 1:
            h ^= UInt32(data[tail])
            h &*= m
        default:
            break
        }
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }
}
