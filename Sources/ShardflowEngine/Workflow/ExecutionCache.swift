import Synchronization

/// Workflow bodies left waiting after their last run, kept per shard so the next result resumes the
/// body instead of replaying its journal from the start (a sticky cache).
///
/// Only a performance device: the journal stays the truth. An entry is used only when the workflow's
/// generation is still the one the body last ran at; anything else (a miss, a reopen, an eviction, a
/// rolled-back transaction) replays from the journal as before. Bounded per shard (least recently
/// kept goes first) and per process, so memory stays bounded however many workflows are in flight.
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
        var evictions = 0
    }

    /// Kept executions across every shard of the process. A small kept body costs about 3.3 KB, so
    /// this bounds the cache near 170 MB however many shards and workflows a worker has.
    static let processLimit = 50_000
    private static let processCount = Atomic<Int>(0)

    private struct State {
        var entries: [String: (entry: Entry, stamp: UInt64)] = [:]
        /// Insertion order with stamps; an item whose stamp no longer matches its entry is stale.
        var order: [(id: String, stamp: UInt64)] = []
        var head = 0
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

    /// Keeps executions (after the transaction that advanced them committed), evicting the least
    /// recently kept when over the bounds. Evicted and refused executions are terminated.
    func keep(_ items: [(workflowId: String, entry: Entry)]) {
        guard !items.isEmpty else { return }
        var dropped: [WorkflowExecution] = []
        state.withLock { state in
            for item in items {
                if let old = state.entries.removeValue(forKey: item.workflowId) {
                    Self.processCount.subtract(1, ordering: .relaxed)
                    dropped.append(old.entry.execution)
                }
                while !state.entries.isEmpty
                        && (state.entries.count >= capacity
                            || Self.processCount.load(ordering: .relaxed) >= Self.processLimit) {
                    guard let evicted = Self.evictOldest(&state) else { break }
                    dropped.append(evicted)
                }
                guard capacity > 0, Self.processCount.load(ordering: .relaxed) < Self.processLimit else {
                    dropped.append(item.entry.execution)
                    continue
                }
                state.nextStamp += 1
                state.entries[item.workflowId] = (item.entry, state.nextStamp)
                state.order.append((item.workflowId, state.nextStamp))
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
            state.order.removeAll()
            state.head = 0
            return all
        }
        for entry in all { entry.execution.terminate() }
    }

    private static func evictOldest(_ state: inout State) -> WorkflowExecution? {
        while state.head < state.order.count {
            let item = state.order[state.head]
            state.head += 1
            if let current = state.entries[item.id], current.stamp == item.stamp {
                state.entries.removeValue(forKey: item.id)
                processCount.subtract(1, ordering: .relaxed)
                state.counters.evictions += 1
                return current.entry.execution
            }
        }
        return nil
    }

    /// Drops stale order items once they outnumber the live ones, so the order list stays bounded.
    private static func compact(_ state: inout State) {
        let pending = state.order.count - state.head
        guard pending > 2 * state.entries.count + 64 else { return }
        let entries = state.entries
        state.order = state.order[state.head...].filter { entries[$0.id]?.stamp == $0.stamp }
        state.head = 0
    }
}
