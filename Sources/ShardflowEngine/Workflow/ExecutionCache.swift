import ShardflowSupport
import Synchronization

/// Workflow bodies left waiting after their last run, kept per shard so the next result resumes the
/// body instead of replaying its journal from the start (a sticky cache).
///
/// Only a performance device: the journal stays the truth. An entry is used only when the workflow's
/// generation is still the one the body last ran at; anything else (a miss, a reopen, an eviction, a
/// rolled-back transaction) replays from the journal as before. Bounded per shard and per process, so
/// memory stays bounded however many workflows are in flight.
///
/// When full, it keeps the earliest-created workflows: the FIFO queue runs their steps first, so the
/// body needed next is the oldest one, and the newest is needed last. (Dropping the least recently kept
/// instead drops running workflows' bodies whenever new starts, each offering a body, arrive faster than
/// steps finish: those steps then replay their journals.) Among workflows created at the same time, the
/// least recently kept goes.
final class ExecutionCache: Sendable {
    struct Entry: Sendable {
        let execution: WorkflowExecution
        /// The workflow's row as of that generation (its name, args and times never change).
        let workflow: WorkflowRow
        /// The generation whose results the body has seen.
        let generation: Int
    }

    struct Counters: Sendable, Equatable {
        var hits = 0
        var misses = 0
        /// Bodies dropped for want of room: kept ones, and offered ones refused.
        var evictions = 0
    }

    /// Kept executions across every shard of the process. A small kept body costs about 3.3 KB, so
    /// this bounds the cache near 170 MB however many shards and workflows a worker has.
    static let processLimit = 50_000
    private static let processCount = Atomic<Int>(0)

    private struct State {
        var entries: [String: (entry: Entry, stamp: UInt64)] = [:]
        /// The entries in the order they would be dropped (`DropOrderItem`); an item whose stamp no longer
        /// matches its entry's is stale and skipped.
        var dropOrder = BinaryHeap<DropOrderItem>()
        var nextStamp: UInt64 = 0
        var counters = Counters()
    }

    let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    var count: Int { state.withLock { $0.entries.count } }
    var counters: Counters { state.withLock { $0.counters } }

    /// Removes and returns the kept execution of a workflow; the caller now owns it.
    func take(_ workflowId: String) -> Entry? {
        state.withLock { state in
            guard let removed = state.entries.removeValue(forKey: workflowId) else { return nil }
            Self.processCount.subtract(1, ordering: .relaxed)
            return removed.entry
        }
    }

    /// Counts a replay that resumed a kept execution (hit) or replayed from the journal (miss).
    func count(hit: Bool) {
        state.withLock { state in
            if hit { state.counters.hits += 1 } else { state.counters.misses += 1 }
        }
    }

    /// Keeps executions (after the transaction that advanced them committed). Over the bounds, the newest
    /// workflow's body is dropped: one already kept, or the one offered. Dropped executions are terminated.
    func keep(_ items: [(workflowId: String, entry: Entry)]) {
        guard !items.isEmpty else { return }
        var dropped: [WorkflowExecution] = []
        state.withLock { state in
            for item in items {
                if let old = state.entries.removeValue(forKey: item.workflowId) {
                    Self.processCount.subtract(1, ordering: .relaxed)
                    dropped.append(old.entry.execution)
                }
                let offered = DropOrderItem(createdAt: item.entry.workflow.createdAt, stamp: state.nextStamp + 1,
                                             id: item.workflowId)
                var refused = capacity == 0
                while !refused && Self.isFull(state.entries.count, capacity: capacity) {
                    // The newest kept workflow goes if it is newer than the one offered, else the offered one.
                    guard let newest = Self.newestKept(&state), newest < offered else {
                        refused = true
                        break
                    }
                    _ = state.dropOrder.pop()
                    if let removed = state.entries.removeValue(forKey: newest.id) {
                        Self.processCount.subtract(1, ordering: .relaxed)
                        dropped.append(removed.entry.execution)
                    }
                    state.counters.evictions += 1
                }
                if refused {
                    if capacity > 0 { state.counters.evictions += 1 }
                    dropped.append(item.entry.execution)
                    continue
                }
                state.nextStamp += 1
                state.entries[item.workflowId] = (item.entry, state.nextStamp)
                state.dropOrder.push(offered)
                Self.processCount.add(1, ordering: .relaxed)
            }
            Self.compact(&state)
        }
        // Outside the lock: terminating runs the body's unwinding.
        for execution in dropped { execution.terminate() }
    }

    /// Drops a workflow's kept execution, if any (it finished or was canceled outside a replay).
    func evict(_ workflowId: String) {
        let removed: Entry? = state.withLock { state in
            guard let removed = state.entries.removeValue(forKey: workflowId) else { return nil }
            Self.processCount.subtract(1, ordering: .relaxed)
            return removed.entry
        }
        removed?.execution.terminate()
    }

    /// Drops every kept execution (the shard stops).
    func removeAll() {
        let all: [Entry] = state.withLock { state in
            let all = state.entries.values.map(\.entry)
            Self.processCount.subtract(all.count, ordering: .relaxed)
            state.entries.removeAll()
            state.dropOrder = BinaryHeap()
            return all
        }
        for entry in all { entry.execution.terminate() }
    }

    private static func isFull(_ count: Int, capacity: Int) -> Bool {
        count >= capacity || processCount.load(ordering: .relaxed) >= processLimit
    }

    /// The kept entry first in drop order (stale items on top are discarded); nil when none is kept.
    private static func newestKept(_ state: inout State) -> DropOrderItem? {
        while let top = state.dropOrder.peek {
            if let current = state.entries[top.id], current.stamp == top.stamp { return top }
            _ = state.dropOrder.pop()
        }
        return nil
    }

    /// Rebuilds the drop order from the live entries once stale items outnumber them, so it stays bounded.
    private static func compact(_ state: inout State) {
        guard state.dropOrder.count > 2 * state.entries.count + 64 else { return }
        var order = BinaryHeap<DropOrderItem>()
        for (id, kept) in state.entries {
            order.push(DropOrderItem(createdAt: kept.entry.workflow.createdAt, stamp: kept.stamp, id: id))
        }
        state.dropOrder = order
    }
}

/// A kept body's place in the order bodies are dropped in: the newest-created workflow first, and among
/// workflows created at the same time the least recently kept. Smaller goes first.
struct DropOrderItem: Comparable {
    let createdAt: Int64
    /// When it was kept (larger: later).
    let stamp: UInt64
    let id: String

    static func < (lhs: Self, rhs: Self) -> Bool {
        lhs.createdAt != rhs.createdAt ? lhs.createdAt > rhs.createdAt : lhs.stamp < rhs.stamp
    }

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.createdAt == rhs.createdAt && lhs.stamp == rhs.stamp }
}
