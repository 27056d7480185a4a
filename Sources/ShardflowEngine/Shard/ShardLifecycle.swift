/// A shard's lifecycle as a state machine: each event returns the action its caller takes, and an
/// event the state does not allow throws `ShardError.illegalTransition` instead of doing nothing.
///
///     opened --start--> running --stop--> stopping --stopped--> stopped --close--> closed
///        \-------------------------stop------------------------/
struct ShardLifecycle {
    enum State {
        /// The store is open; no loop runs yet.
        case opened
        /// The work, timer and retention loops run.
        case running(loops: [Task<Void, Never>])
        /// Draining in-flight steps; the loops are being stopped.
        case stopping
        /// No loop runs; the store stays open so the outbox can still be published and acknowledged.
        case stopped
        /// The store is closed and its lock released.
        case closed

        var name: String {
            switch self {
            case .opened: return "opened"
            case .running: return "running"
            case .stopping: return "stopping"
            case .stopped: return "stopped"
            case .closed: return "closed"
            }
        }
    }

    private(set) var state: State = .opened
    let shard: Int

    init(shard: Int) { self.shard = shard }

    var isRunning: Bool {
        if case .running = state { return true }
        return false
    }

    private func illegal(_ event: String) -> ShardError {
        .illegalTransition(shard: shard, event: event, state: state.name)
    }

    /// `start`: only an opened shard starts (a stopped one is not started again: open it anew).
    mutating func start(_ makeLoops: () -> [Task<Void, Never>]) throws {
        guard case .opened = state else { throw illegal("start") }
        state = .running(loops: makeLoops())
    }

    enum StopAction {
        /// Drain the in-flight steps, then cancel and await these loops.
        case drain(loops: [Task<Void, Never>])
        /// Another stop is draining, or the shard has stopped already.
        case none
    }

    mutating func stop() -> StopAction {
        switch state {
        case .opened:
            state = .stopping
            return .drain(loops: [])
        case .running(let loops):
            state = .stopping
            return .drain(loops: loops)
        case .stopping, .stopped, .closed:
            return .none
        }
    }

    /// The drain that `stop` started has finished.
    mutating func stopped() throws {
        guard case .stopping = state else { throw illegal("stopped") }
        state = .stopped
    }

    enum CloseAction {
        case closeStore
        case none
    }

    /// `close`: a stopped shard closes its store; a closed one stays closed.
    mutating func close() throws -> CloseAction {
        switch state {
        case .stopped:
            state = .closed
            return .closeStore
        case .closed:
            return .none
        case .opened, .running, .stopping:
            throw illegal("close")
        }
    }
}
