import ShardflowSupport

/// The exact ideal of a bench run: the FIFO list schedule of the run's own step latencies on the same
/// slots. Each shard has `slotsPerShard` slots; a workflow's next step is ready when its previous one
/// ends; whenever a slot is free, the ready step of the earliest-created workflow of that shard takes it
/// (the order Shardflow's claim uses, I4). Nothing else costs time: no replay, no queueing in Kafka, no
/// HTTP. So a measured run can come close to it and never beat it.
public enum IdealSchedule {
    public struct Workflow: Sendable {
        /// Creation order: the FIFO priority.
        public var index: Int
        public var shard: Int
        /// Seconds each step takes, in the order the workflow runs them (one after another).
        public var stepSeconds: [Double]

        public init(index: Int, shard: Int, stepSeconds: [Double]) {
            self.index = index
            self.shard = shard
            self.stepSeconds = stepSeconds
        }
    }

    /// When each workflow completes, in seconds from the start, by creation index.
    ///
    /// With `requestsPerMinute` (the API's limit, as the mock enforces it: a bucket of one second's
    /// requests, full at the start, refilled at the limit), a step also needs a request token to start,
    /// and the shards share the bucket: the ready step of the earliest-created workflow of any shard with
    /// a free slot takes the next token (the order the worker's limiter keeps). Each step takes one token
    /// (an injected error's retry takes none: a lower bound there).
    public static func completionSeconds(_ workflows: [Workflow], slotsPerShard: Int,
                                         requestsPerMinute: Int = 0) -> [Int: Double] {
        if requestsPerMinute > 0 {
            return simulateRateLimited(workflows.sorted { $0.index < $1.index }, slots: max(1, slotsPerShard),
                                       perSecond: Double(requestsPerMinute) / 60)
        }
        var result: [Int: Double] = [:]
        result.reserveCapacity(workflows.count)
        for (_, members) in Dictionary(grouping: workflows, by: \.shard) {
            simulateShard(members.sorted { $0.index < $1.index }, slots: max(1, slotsPerShard), into: &result)
        }
        return result
    }

    fileprivate struct Running: Comparable {
        var end: Double
        var position: Int
        static func < (a: Running, b: Running) -> Bool { a.end != b.end ? a.end < b.end : a.position < b.position }
    }

    private static func simulateShard(_ members: [Workflow], slots: Int, into result: inout [Int: Double]) {
        // Positions in `members` are creation order, so the smallest ready position is the FIFO head.
        var ready = BinaryHeap<Int>()
        var running = BinaryHeap<Running>()
        var nextStep = Array(repeating: 0, count: members.count)
        for position in members.indices {
            if members[position].stepSeconds.isEmpty { result[members[position].index] = 0 } else { ready.push(position) }
        }
        var now = 0.0
        while !ready.isEmpty || !running.isEmpty {
            while running.count < slots, let position = ready.pop() {
                running.push(Running(end: now + members[position].stepSeconds[nextStep[position]], position: position))
            }
            guard let finished = running.pop() else { break }
            now = finished.end
            var ended = [finished]
            while let next = running.peek, next.end == now, let same = running.pop() { ended.append(same) }
            for item in ended {
                nextStep[item.position] += 1
                if nextStep[item.position] < members[item.position].stepSeconds.count {
                    ready.push(item.position)
                } else {
                    result[members[item.position].index] = now
                }
            }
        }
    }
}

extension IdealSchedule {
    /// All shards at once, behind one token bucket (see `completionSeconds`).
    private static func simulateRateLimited(_ members: [Workflow], slots: Int, perSecond rate: Double) -> [Int: Double] {
        var result: [Int: Double] = [:]
        let capacity = max(1, rate)
        var tokens = capacity
        var ready = BinaryHeap<Int>()
        /// Ready steps of shards whose slots are all taken, by shard: they wait for one of its slots.
        var waiting: [Int: BinaryHeap<Int>] = [:]
        var busy: [Int: Int] = [:]
        var running = BinaryHeap<Running>()
        var nextStep = Array(repeating: 0, count: members.count)
        for position in members.indices {
            if members[position].stepSeconds.isEmpty { result[members[position].index] = 0 } else { ready.push(position) }
        }
        var now = 0.0
        while !ready.isEmpty || !running.isEmpty || waiting.values.contains(where: { !$0.isEmpty }) {
            // Start what a token and a slot allow, earliest-created first.
            while tokens >= 1 - 1e-9, let position = ready.pop() {
                let shard = members[position].shard
                if busy[shard, default: 0] >= slots {
                    waiting[shard, default: BinaryHeap()].push(position)
                    continue
                }
                tokens -= 1
                busy[shard, default: 0] += 1
                running.push(Running(end: now + members[position].stepSeconds[nextStep[position]], position: position))
            }
            // The next event: a step ends, or (with steps ready) the bucket holds a token again.
            let tokenAt = ready.isEmpty ? Double.infinity : now + max(0, 1 - tokens) / rate
            let endAt = running.peek?.end ?? .infinity
            guard tokenAt.isFinite || endAt.isFinite else { break }
            let next = min(tokenAt, endAt)
            tokens = min(capacity, tokens + (next - now) * rate)
            now = next
            while let item = running.peek, item.end <= now, let ended = running.pop() {
                let shard = members[ended.position].shard
                busy[shard, default: 1] -= 1
                if let freed = waiting[shard]?.pop() { ready.push(freed) }
                nextStep[ended.position] += 1
                if nextStep[ended.position] < members[ended.position].stepSeconds.count {
                    ready.push(ended.position)
                } else {
                    result[members[ended.position].index] = now
                }
            }
        }
        return result
    }
}
