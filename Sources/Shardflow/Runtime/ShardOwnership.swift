import ShardflowEngine

/// A worker's ownership of each shard the group gave it, as a state machine. An event whose outcome the
/// worker acts on returns the action; an event the shard's state does not allow throws instead of doing
/// nothing.
///
///     (closed) --assign--> opening --opened--> running --revoke--> settling --settled--> (closed)
///                             |  \--refuse--> refused --revoke--> (closed)
///                             |   \--openFailed--> (closed)
///                             \--revoke--> settling (the open is cancelled; a store that opened anyway is closed)
///     running --stop--> stopped (its log stopped it) --revoke--> settling
///
/// Opens run beside the worker's event loop (their partitions stay paused until positioned), so a revoke is
/// handled at once: it cancels an open still running and waits only for it to give its store back.
/// `Owned` is what runs a shard (`Worker.OwnedShard`); the machine only holds it.
struct ShardOwnerships<Owned: Sendable> {
    enum State {
        /// Its store is being opened (the task may wait for the previous owner's lock).
        case opening(Task<Void, Never>?)
        /// Running; its open task may still be positioning the consumers (seek, resume, control assign).
        case running(Owned, opening: Task<Void, Never>?)
        /// Stopped by its log while still assigned here: another worker claimed it (fenced), or a record of its
        /// own never reached the log (diverged). Nothing runs it here; the group's revoke closes it.
        case stopped(Owned, opening: Task<Void, Never>?, reason: String)
        /// Revoked: stopping, publishing what is left, closing.
        case settling
        /// Its store is not in this data directory (see `adoptMissingStores`); left alone until revoked.
        case refused

        var name: String {
            switch self {
            case .opening: return "opening"
            case .running: return "running"
            case .stopped: return "stopped"
            case .settling: return "settling"
            case .refused: return "refused"
            }
        }
    }

    struct IllegalTransition: Error, CustomStringConvertible {
        let shard: Int
        let event: String
        let state: String
        var description: String { "shard \(shard): \(event) is not allowed while \(state)" }
    }

    /// Shards not in the table are closed.
    private(set) var states: [Int: State] = [:]

    private func illegal(_ shard: Int, _ event: String) -> IllegalTransition {
        IllegalTransition(shard: shard, event: event, state: states[shard]?.name ?? "closed")
    }

    var running: [Int: Owned] {
        states.compactMapValues { state in
            if case .running(let owned, _) = state { return owned }
            return nil
        }
    }

    var opening: Set<Int> { Set(states.compactMap { if case .opening = $0.value { return $0.key } else { return nil } }) }
    var refused: Set<Int> { Set(states.compactMap { if case .refused = $0.value { return $0.key } else { return nil } }) }
    /// Shards stopped by their logs, waiting for their revoke, with the reason.
    var stopped: [Int: String] {
        states.compactMapValues { state in
            if case .stopped(_, _, let reason) = state { return reason }
            return nil
        }
    }

    func runningShard(_ shard: Int) -> Owned? {
        if case .running(let owned, _) = states[shard] { return owned }
        return nil
    }

    /// What runs or ran the shard while the group still gives it here: running, or stopped by its log.
    func assignedShard(_ shard: Int) -> Owned? {
        switch states[shard] {
        case .running(let owned, _), .stopped(let owned, _, _): return owned
        default: return nil
        }
    }

    /// The group assigned the shard: open it.
    mutating func assign(_ shard: Int) throws {
        switch states[shard] {
        case nil, .refused: states[shard] = .opening(nil)
        case .opening, .running, .stopped, .settling: throw illegal(shard, "assign")
        }
    }

    /// The task that opens it, once started.
    mutating func opening(_ shard: Int, task: Task<Void, Never>) {
        if case .opening = states[shard] { states[shard] = .opening(task) }
    }

    enum OpenedAction {
        /// Run it: it is now `running`.
        case run
        /// It was revoked while opening: close the store.
        case close
    }

    /// Its store opened; `owned` is what runs it.
    mutating func opened(_ shard: Int, _ owned: Owned) throws -> OpenedAction {
        switch states[shard] {
        case .opening(let task):
            states[shard] = .running(owned, opening: task)
            return .run
        case .settling:
            return .close
        case nil, .running, .stopped, .refused:
            throw illegal(shard, "opened")
        }
    }

    /// Its log stopped it (`reason` says why): it runs no more here, though the group still assigns it, and
    /// `/readyz` says so until the revoke. A shard already settling stays so (its revoke came first).
    mutating func stop(_ shard: Int, reason: String) throws {
        switch states[shard] {
        case .running(let owned, let opening):
            states[shard] = .stopped(owned, opening: opening, reason: reason)
        case .settling:
            return
        case nil, .opening, .stopped, .refused:
            throw illegal(shard, "stop")
        }
    }

    /// The store could not be opened (locked past the timeout, or failing): not run here.
    mutating func openFailed(_ shard: Int) {
        if case .opening = states[shard] { states[shard] = nil }
    }

    /// Its store belongs to another data directory: left alone until revoked.
    mutating func refuse(_ shard: Int) throws {
        guard case .opening = states[shard] else { throw illegal(shard, "refuse") }
        states[shard] = .refused
    }

    enum RevokeAction {
        /// Cancel what is left of its open and wait for it, then settle the running shard.
        case settle(Owned, opening: Task<Void, Never>?)
        /// Cancel the open and wait for it (it closes what it opened).
        case cancelOpening(Task<Void, Never>?)
        case none

        /// The open task to cancel and wait for, if one may still run.
        var openTask: Task<Void, Never>? {
            switch self {
            case .settle(_, let opening): return opening
            case .cancelOpening(let task): return task
            case .none: return nil
            }
        }
    }

    /// The group took the shard back.
    mutating func revoke(_ shard: Int) -> RevokeAction {
        switch states[shard] {
        case .running(let owned, let opening), .stopped(let owned, let opening, _):
            states[shard] = .settling
            return .settle(owned, opening: opening)
        case .opening(let task):
            states[shard] = .settling
            return .cancelOpening(task)
        case .refused:
            states[shard] = nil
            return .none
        case nil, .settling:
            return .none
        }
    }

    /// Settled (or its cancelled open finished): closed.
    mutating func settled(_ shard: Int) throws {
        guard case .settling = states[shard] else { throw illegal(shard, "settled") }
        states[shard] = nil
    }

    /// The worker stops: every running shard is to be settled, and every open cancelled.
    mutating func revokeAll() -> [(Int, RevokeAction)] {
        states.keys.sorted().map { ($0, revoke($0)) }
    }
}
