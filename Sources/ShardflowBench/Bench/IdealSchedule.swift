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
    public static func completionSeconds(_ workflows: [Workflow], slotsPerShard: Int) -> [Int: Double] {
        var result: [Int: Double] = [:]
        result.reserveCapacity(workflows.count)
        for (_, members) in Dictionary(grouping: workflows, by: \.shard) {
            simulateShard(members.sorted { $0.index < $1.index }, slots: max(1, slotsPerShard), into: &result)
        }
        return result
    }

    private struct Running: Comparable {
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

/// A binary min-heap.
struct BinaryHeap<Element: Comparable> {
    private var items: [Element] = []
    var isEmpty: Bool { items.isEmpty }
    var count: Int { items.count }
    var peek: Element? { items.first }

    mutating func push(_ element: Element) {
        items.append(element)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard items[child] < items[parent] else { break }
            items.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> Element? {
        guard !items.isEmpty else { return nil }
        items.swapAt(0, items.count - 1)
        let top = items.removeLast()
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < items.count && items[left] < items[smallest] { smallest = left }
            if right < items.count && items[right] < items[smallest] { smallest = right }
            if smallest == parent { break }
            items.swapAt(parent, smallest)
            parent = smallest
        }
        return top
    }
}
