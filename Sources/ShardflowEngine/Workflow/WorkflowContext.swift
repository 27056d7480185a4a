import ShardflowSupport
import Foundation
import ShardflowJSON
import Synchronization

/// What a workflow body sees: durable steps, timers and events, replayed from the journal.
///
/// A body must be deterministic: given the same journal it must ask for the same operations in the
/// same order. It may only await this context (and its own child tasks); anything else is treated as
/// "the body cannot go on" and fails the workflow.
public final class WorkflowContext: Sendable {
    public let workflowId: String
    public let workflowName: String
    /// The registered version of the workflow this run executes (see `WorkflowRegistry.registerWorkflow`).
    public let workflowVersion: Int
    let registry: WorkflowRegistry
    /// The workflow's default (its own, else the worker's), below a step's own and a call's.
    let defaultRetry: RetryPolicy
    let state: Mutex<ReplayState>

    struct ReplayState {
        var nextSeq = 1
        var journal: [Int: JournalEntry]
        var released: Set<Int> = []
        var waiting: [Int: CheckedContinuation<JournalEntry, any Error>] = [:]
        var commands: [NewCommand] = []
        var suspended = false
        /// Operations issued and not yet resolved, and how many steps were issued: at completion they
        /// tell whether anything (a task, timer or event wait) can be left to clean up.
        var unresolved: Set<Int> = []
        var stepCount = 0
        var violation: DeterminismViolation?
        /// Set when the body needs what this worker lacks (a step not registered): the run is parked.
        var unrunnable: UnregisteredStepError?
        /// Patch markers in the journal or recorded by this run, and how many there are (a new one is
        /// numbered -(count + 1)).
        var markers: Set<String> = []
        var markerCount = 0
        /// What `patched` answered per patch in this execution: asked again, it answers the same.
        var patchDecisions: [String: Bool] = [:]
        var now: Int64
    }

    init(workflowId: String, workflowName: String, workflowVersion: Int = 1, registry: WorkflowRegistry,
         defaultRetry: RetryPolicy, journal: [JournalEntry], startedAt: Int64) {
        self.workflowId = workflowId
        self.workflowName = workflowName
        self.workflowVersion = workflowVersion
        self.registry = registry
        self.defaultRetry = defaultRetry
        var byStep: [Int: JournalEntry] = [:]
        var markers: Set<String> = []
        var markerCount = 0
        for entry in journal {
            if entry.kind == .patch {
                markers.insert(entry.name)
                markerCount += 1
            } else {
                byStep[entry.seq] = entry
            }
        }
        self.state = Mutex(ReplayState(journal: byStep, markers: markers, markerCount: markerCount, now: startedAt))
    }

    /// Deterministic time in milliseconds since the epoch: when the latest result the body has seen
    /// was recorded (the workflow's start before any).
    public var now: Int64 { state.withLock { $0.now } }

    /// Runs a registered step (or returns its journaled output) and decodes its output.
    public func run<Input: Encodable & Sendable, Output: Decodable & Sendable>(
        _ name: String, _ input: Input, as output: Output.Type = Output.self, retry: RetryPolicy? = nil
    ) async throws -> Output {
        // A journaled result needs no definition (a deploy may drop a step that running workflows already
        // ran); issuing the step does. Without it the run is parked (even if the body catches the error):
        // not a failure of the workflow, and a worker that has the step runs it on.
        let step = registry.steps[name]
        let inputText = try JSONCoding.encodeString(input)
        let policy = retry ?? step?.retry ?? defaultRetry
        let entry = try await operation(kind: .step, name: name) { seq in
            step == nil ? nil : .step(seq: seq, name: name, input: inputText, retry: policy)
        }
        switch entry.status {
        case .succeeded:
            return try JSONCoding.decode(Output.self, from: entry.output ?? "null")
        default:
            throw StepFailedError(step: name, message: entry.error ?? "failed")
        }
    }

    /// Runs a step through its typed reference.
    public func run<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ step: StepReference<Input, Output>, _ input: Input, retry: RetryPolicy? = nil
    ) async throws -> Output {
        try await run(step.name, input, as: Output.self, retry: retry)
    }

    /// A durable timer: the workflow resumes after `duration`, even across restarts.
    public func sleep(for duration: Duration) async throws {
        let millis = max(0, duration.milliseconds)
        _ = try await operation(kind: .sleep, name: "sleep") { seq in .sleep(seq: seq, milliseconds: millis) }
    }

    /// Waits for the named event sent to this workflow; nil when `timeout` passes first.
    public func waitForEvent(_ name: String, timeout: Duration? = nil) async throws -> JSONValue? {
        let timeoutMillis = timeout.map { max(0, $0.milliseconds) }
        let entry = try await operation(kind: .event, name: name) { seq in
            .waitForEvent(seq: seq, name: name, timeoutMilliseconds: timeoutMillis)
        }
        guard entry.status == .received else { return nil }
        return try JSONCoding.decode(JSONValue.self, from: entry.output ?? "null")
    }

    /// Whether this run takes the new code of a change guarded by `patchId`, deterministically:
    ///
    ///     if ctx.patched("add-critique") { new code } else { old code }
    ///
    /// A workflow that reaches this call for the first time takes the new branch, and a marker is
    /// journaled. A replay of a history recorded without the marker takes the old branch when the
    /// history went on past this point (it ran the old code here); a history that ends here has not run
    /// either branch, so it takes the new one. Asked again in one run, the answer stays the same.
    /// Markers take no place in the numbering of operations, so the call can be added, and later
    /// removed (see `deprecatePatch`), without shifting the operations after it.
    public func patched(_ patchId: String) -> Bool {
        state.withLock { state in
            if let decided = state.patchDecisions[patchId] { return decided }
            let decision: Bool
            if state.markers.contains(patchId) {
                decision = true
            } else if state.suspended || state.journal[state.nextSeq] != nil {
                // The history recorded an operation here without the marker: it ran the old code.
                decision = false
            } else {
                Self.recordMarker(patchId, &state)
                decision = true
            }
            state.patchDecisions[patchId] = decision
            return decision
        }
    }

    /// Marks the point where `patched(patchId)` was once asked, after the old branch is deleted (no
    /// running workflow still needs it): new runs still record the marker, so a worker of the previous
    /// deploy (with the `patched` call) that replays their history takes the new branch. Once no worker
    /// runs that deploy, this call can be deleted too.
    public func deprecatePatch(_ patchId: String) {
        state.withLock { state in
            guard state.patchDecisions[patchId] == nil, !state.markers.contains(patchId) else { return }
            if !state.suspended && state.journal[state.nextSeq] == nil { Self.recordMarker(patchId, &state) }
            state.patchDecisions[patchId] = true
        }
    }

    private static func recordMarker(_ patchId: String, _ state: inout ReplayState) {
        state.markers.insert(patchId)
        state.markerCount += 1
        state.commands.append(.patch(seq: -state.markerCount, name: patchId))
    }

    private enum Lookup {
        case resolved(JournalEntry)
        case wait(Int)
        case fail(any Error)
    }

    /// - Parameter command: the operation to issue when the journal does not have it; nil when this worker
    ///   cannot issue it (a step it does not have), which parks the run.
    private func operation(kind: JournalEntry.Kind, name: String,
                           command: (Int) -> NewCommand?) async throws -> JournalEntry {
        let lookup: Lookup = state.withLock { state in
            if state.suspended { return .fail(ReplaySuspended()) }
            if let violation = state.violation { return .fail(violation) }
            let seq = state.nextSeq
            state.nextSeq += 1
            if kind == .step { state.stepCount += 1 }
            if let entry = state.journal[seq] {
                guard entry.kind == kind && entry.name == name else {
                    let violation = DeterminismViolation(description:
                        "determinism violation: operation \(seq) is \(kind.rawValue) \"\(name)\" in this run but \(entry.kind.rawValue) \"\(entry.name)\" in the journal")
                    state.violation = violation
                    return .fail(violation)
                }
                if state.released.contains(seq) && entry.status.isResolved { return .resolved(entry) }
                state.unresolved.insert(seq)
                return .wait(seq)
            }
            guard let issued = command(seq) else {
                let missing = UnregisteredStepError(step: name)
                if state.unrunnable == nil { state.unrunnable = missing }
                return .fail(missing)
            }
            state.commands.append(issued)
            state.unresolved.insert(seq)
            return .wait(seq)
        }
        switch lookup {
        case .resolved(let entry): return entry
        case .fail(let error): throw error
        case .wait(let seq):
            return try await withCheckedThrowingContinuation { continuation in
                let suspended = state.withLock { state in
                    if state.suspended { return true }
                    state.waiting[seq] = continuation
                    return false
                }
                if suspended { continuation.resume(throwing: ReplaySuspended()) }
            }
        }
    }

    // MARK: driving (used by the replayer)

    /// Delivers the results of one replay round (in operation order) to the calls waiting for them.
    func release(_ seqs: [Int]) {
        var toResume: [(CheckedContinuation<JournalEntry, any Error>, JournalEntry)] = []
        state.withLock { state in
            for seq in seqs.sorted() {
                guard let entry = state.journal[seq] else { continue }
                state.unresolved.remove(seq)
                state.released.insert(seq)
                if let completedAt = entry.completedAt, completedAt > state.now { state.now = completedAt }
                if let continuation = state.waiting.removeValue(forKey: seq) {
                    toResume.append((continuation, entry))
                }
            }
        }
        for (continuation, entry) in toResume { continuation.resume(returning: entry) }
    }

    /// Delivers results that arrived after the body was left waiting (a kept execution's next round).
    func deliver(_ entries: [JournalEntry]) {
        guard !entries.isEmpty else { return }
        state.withLock { state in
            for entry in entries { state.journal[entry.seq] = entry }
        }
        release(entries.map(\.seq))
    }

    /// Steps the body issued, and whether every operation it issued has its result (so no task, timer
    /// or event wait of this workflow is left in the store).
    var issuedOperations: (steps: Int, allResolved: Bool) {
        state.withLock { ($0.stepCount, $0.unresolved.isEmpty) }
    }

    /// Whether some call of the body waits for a journal entry to be resolved.
    var isAwaitingJournal: Bool { state.withLock { !$0.waiting.isEmpty } }

    /// After a run settles: the violation if any, and the new operations (taken, so a resumed run
    /// reports only its own). Entries the body has already consumed are dropped to keep a cached
    /// execution small.
    func takeRunState() -> (violation: DeterminismViolation?, unrunnable: UnregisteredStepError?, commands: [NewCommand]) {
        state.withLock { state in
            let commands = state.commands
            state.commands.removeAll()
            let consumed = state.released.filter { $0 < state.nextSeq }
            state.released.subtract(consumed)
            for seq in consumed { state.journal.removeValue(forKey: seq) }
            return (state.violation, state.unrunnable, commands)
        }
    }

    /// Ends the replay: every pending call throws, and later calls throw at once.
    func suspendAll() {
        let pending = state.withLock { state in
            state.suspended = true
            let waiting = state.waiting
            state.waiting.removeAll()
            return waiting
        }
        for (_, continuation) in pending { continuation.resume(throwing: ReplaySuspended()) }
    }
}
