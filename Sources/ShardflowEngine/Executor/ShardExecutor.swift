import Logging
import ShardflowSupport
import Synchronization

/// The executor: claims ready tasks in FIFO order (I4), runs at most `maxConcurrency` at once (I5), and
/// buffers their results for the work loop to record. It owns the in-flight steps, their results and the
/// epoch it claims at; the store decides, in each claim's transaction, whether that epoch is current.
final class ShardExecutor: Sendable {
    /// A task taken by a claim.
    struct ClaimedTask: Sendable {
        let workflowId: String
        let stepId: Int
        let name: String
        let input: String
        let attempt: Int
        /// The workflow's createdAt: the FIFO key (I4), for whatever orders the step's work further.
        let createdAt: Int64
    }

    /// What one claim may take: free slots (at most `claimLimit`) at the executor's epoch.
    struct ClaimPlan: Sendable {
        let limit: Int
        let epoch: Int64
    }

    /// What a claim's transaction took. `stale`: the store's epoch moved on, so this executor retires.
    struct Claim: Sendable {
        let plan: ClaimPlan
        let tasks: [ClaimedTask]
        let stale: Bool
    }

    /// A step's result, waiting to be recorded.
    struct StepOutcome: Sendable {
        let workflowId: String
        let stepId: Int
        let name: String
        let attempt: Int
        let result: Result<String, StepError>
        let finishedAt: ContinuousClock.Instant
    }

    struct StepError: Error, Sendable {
        let message: String
        /// False when the step's error said another attempt cannot succeed (`StepFailureClassifying`).
        var retryable = true
        /// The step is not registered in this worker: its workflow is parked, the step not failed.
        var unregistered = false
    }

    private struct TaskKey: Hashable, Sendable {
        let workflowId: String
        let stepId: Int
    }

    private struct State {
        /// The epoch the executor claims at; nil when it does not claim.
        var epoch: Int64?
        /// Running steps; the handle is nil between taking the slot and starting the task.
        var inFlight: [TaskKey: Task<Void, Never>?] = [:]
        var results: [StepOutcome] = []
        /// Set by `stop`: results that come later are dropped (their tasks go back to the queue).
        var acceptsResults = true
    }

    private let shard: Int
    private let configuration: ShardConfiguration
    private let registry: WorkflowRegistry
    private let metrics: EngineMetrics
    private let logger: Logger
    private let signals: WorkSignals
    private let crashSites: CrashSites
    private let state: Mutex<State>

    init(shard: Int, configuration: ShardConfiguration, registry: WorkflowRegistry, metrics: EngineMetrics, logger: Logger,
         signals: WorkSignals, crashSites: CrashSites, epoch: Int64?) {
        self.shard = shard
        self.configuration = configuration
        self.registry = registry
        self.metrics = metrics
        self.logger = logger
        self.signals = signals
        self.crashSites = crashSites
        self.state = Mutex(State(epoch: epoch))
    }

    // MARK: claiming

    /// Nil when no claim can take anything: no free slot, no epoch, or no ready task since the last
    /// claim (`tasksAdded`: the caller's own transaction has just queued some).
    func planClaim(tasksAdded: Bool) -> ClaimPlan? {
        // A finished step keeps its slot until its result is recorded: until then its task is still
        // `running` in the store, and I5 holds for what the store shows too.
        let (free, epoch) = state.withLock { state in
            (configuration.maxConcurrency - state.inFlight.count - state.results.count, state.epoch)
        }
        guard free > 0, let epoch else { return nil }
        guard signals.claim.take() || tasksAdded else { return nil }
        return ClaimPlan(limit: min(free, configuration.claimLimit), epoch: epoch)
    }

    /// The claim's statements, inside the caller's transaction.
    func claim(_ transaction: ShardTransaction, _ plan: ClaimPlan) throws -> Claim {
        // The epoch is read in the claim's own transaction: an executor of an older epoch claims nothing.
        guard let meta = try StoreQueries.meta(transaction.connection), meta.executorEnabled, meta.epoch == plan.epoch else {
            return Claim(plan: plan, tasks: [], stale: true)
        }
        if try outboxIsFull(transaction) {
            // Tasks are left: look again once the outbox drains (acknowledging wakes the loop).
            signals.claim.raise()
            return Claim(plan: plan, tasks: [], stale: false)
        }
        // The FIFO selection (I4), then one update of the same selection (same transaction, same
        // total order, so the same rows) rather than one update per task. The partial FIFO index holds
        // exactly the queued tasks, walked in order and stopped at the limit; `+readyAt` keeps the
        // planner on it (a task backing off is skipped by the row check).
        let claimed = try transaction.rows("""
            SELECT workflowId, seq, name, input, attempts, fifoAt FROM journal
            WHERE taskState = 'queued' AND +readyAt <= ?
            ORDER BY fifoAt, workflowId, seq LIMIT ?
            """, transaction.now, plan.limit) { row in
            ClaimedTask(workflowId: row[0], stepId: row[1], name: row[2], input: row[3], attempt: (row[4] as Int) + 1,
                        createdAt: row[5])
        }
        guard !claimed.isEmpty else { return Claim(plan: plan, tasks: [], stale: false) }
        try transaction.run("""
            UPDATE journal SET taskState = 'running', attempts = attempts + 1, claimedEpoch = ?
            WHERE (workflowId, seq) IN (
                SELECT workflowId, seq FROM journal
                WHERE taskState = 'queued' AND +readyAt <= ?
                ORDER BY fifoAt, workflowId, seq LIMIT ?)
            """, plan.epoch, transaction.now, plan.limit)
        return Claim(plan: plan, tasks: claimed, stale: false)
    }

    private func outboxIsFull(_ transaction: ShardTransaction) throws -> Bool {
        // max-min is an upper bound of the row count, and cheap; count exactly only when it is high.
        // Two subqueries: `MAX(id) - MIN(id)` in one expression would scan the table.
        let span = try transaction.int("SELECT (SELECT MAX(id) FROM outbox) - (SELECT MIN(id) FROM outbox) + 1") ?? 0
        guard span > Int64(configuration.outboxHighWater) else { return false }
        return try transaction.count("SELECT COUNT(*) FROM outbox") > configuration.outboxHighWater
    }

    /// After the claim committed: starts its steps, or retires the executor whose epoch is over.
    /// Returns how many started.
    @discardableResult
    func launch(_ claim: Claim) -> Int {
        if claim.stale {
            // bumpEpoch committed: this executor is done; in-flight steps still record.
            state.withLock { state in
                if state.epoch == claim.plan.epoch { state.epoch = nil }
            }
        }
        guard !claim.tasks.isEmpty else { return 0 }
        // A full claim may have left more ready tasks.
        if claim.tasks.count >= claim.plan.limit { signals.claim.raise() }
        start(claim.tasks)
        return claim.tasks.count
    }

    /// Starts the claimed steps. Their slots are taken first and the tasks created outside the lock,
    /// so a step that finishes at once does not wait for the launch of the others.
    private func start(_ tasks: [ClaimedTask]) {
        state.withLock { state in
            for task in tasks { state.inFlight[TaskKey(workflowId: task.workflowId, stepId: task.stepId)] = .some(nil) }
        }
        let stepDuration = metrics.stepDuration
        var started: [(TaskKey, Task<Void, Never>)] = []
        started.reserveCapacity(tasks.count)
        for task in tasks {
            let key = TaskKey(workflowId: task.workflowId, stepId: task.stepId)
            let definition = registry.steps[task.name]
            let context = StepContext(workflowId: task.workflowId, stepId: task.stepId, name: task.name,
                                      attempt: task.attempt, shard: shard, logger: logger, workflowCreatedAt: task.createdAt)
            // The step runs with its crash site set, so a trap in its code is recorded as its own.
            let site = crashSites.site(CrashSubject(kind: .step, workflowId: task.workflowId, stepId: task.stepId))
            started.append((key, Task {
                let started = ContinuousClock.now
                let result: Result<String, StepError>
                if let definition {
                    do {
                        if let site {
                            result = .success(try await site.attributing { try await definition.run(task.input, context) })
                        } else {
                            result = .success(try await definition.run(task.input, context))
                        }
                    } catch {
                        let retryable = (error as? any StepFailureClassifying)?.isRetryable ?? true
                        result = .failure(StepError(message: String(describing: error), retryable: retryable))
                    }
                } else {
                    result = .failure(StepError(message: "step \(task.name) is not registered in this worker",
                                                retryable: false, unregistered: true))
                }
                let finished = ContinuousClock.now
                stepDuration.recordNanoseconds((finished - started).nanoseconds)
                self.finish(StepOutcome(workflowId: task.workflowId, stepId: task.stepId, name: task.name, attempt: task.attempt,
                                        result: result, finishedAt: finished), key: key)
            }))
        }
        state.withLock { state in
            // A step that already finished has left its slot; only the others keep a handle.
            for (key, handle) in started where state.inFlight[key] != nil { state.inFlight[key] = handle }
        }
    }

    private func finish(_ outcome: StepOutcome, key: TaskKey) {
        let drained = state.withLock { state -> Bool in
            state.inFlight.removeValue(forKey: key)
            if state.acceptsResults { state.results.append(outcome) }
            return state.inFlight.isEmpty
        }
        signals.work.notify()
        if drained { signals.drained.notify() }
    }

    // MARK: results

    /// Takes up to `limit` buffered results, oldest first.
    func takeResults(limit: Int) -> [StepOutcome] {
        state.withLock { state in
            let count = min(state.results.count, limit)
            guard count > 0 else { return [] }
            let taken = Array(state.results.prefix(count))
            state.results.removeFirst(count)
            return taken
        }
    }

    /// Puts back results whose transaction rolled back, ahead of the others.
    func putBack(_ results: [StepOutcome]) {
        state.withLock { $0.results.insert(contentsOf: results, at: 0) }
    }

    // MARK: epoch and draining

    /// `resumeExecutors` committed: claim at `epoch`.
    func resume(at epoch: Int64) {
        state.withLock { $0.epoch = epoch }
    }

    /// The epoch the executor claims at; nil when it does not claim.
    var epoch: Int64? { state.withLock { $0.epoch } }

    var inFlightCount: Int { state.withLock { $0.inFlight.count } }

    var isDrained: Bool { state.withLock { $0.inFlight.isEmpty } }

    /// Cancels the steps still running (the shard stops after its drain timeout). Their results, if
    /// they come before `refuseResults`, are recorded like any other.
    func cancelUnfinished() {
        let unfinished = state.withLock { state in state.inFlight.values.compactMap { $0 } }
        for step in unfinished { step.cancel() }
    }

    /// Drops the results never recorded and every later one (the shard has stopped: their tasks are
    /// back in the queue).
    func refuseResults() {
        state.withLock { state in
            state.acceptsResults = false
            state.results.removeAll()
        }
    }
}

/// Where the crash guard records the code that runs (nil sites when attribution is off).
struct CrashSites: Sendable {
    let file: CrashRecordFile
    let enabled: Bool

    func site(_ subject: CrashSubject) -> CrashSite? { enabled ? file.site(subject) : nil }
}
