import Synchronization

/// How one replay of a workflow body ended.
enum ReplayOutcome: Sendable {
    /// The body returned; `markers` are the patch markers it recorded in this run.
    case completed(result: String, markers: [NewCommand])
    /// The body threw (a step failure it did not catch, an error of its own).
    case failed(WorkflowErrorInfo, markers: [NewCommand])
    /// The body waits for the results of operations (`commands` are the new ones, markers included).
    case waiting(commands: [NewCommand])
    /// The body asked for other operations than its journal recorded (its code changed unsafely).
    case violated(DeterminismViolation)
    /// The body needs what this worker lacks (a step not registered here).
    case unrunnable(UnregisteredStepError)
}

/// One run of a workflow body on its own `ReplayPump`, driven synchronously on the calling thread.
///
/// A fresh execution replays the journal round by round, in the generation in which each result first
/// reached the body, so the body's calls interleave exactly as in every earlier run (parallel branches
/// included). An execution left waiting can be kept (see `ExecutionCache`) and resumed with the next
/// round's results instead of being replayed from the start: it is then in exactly the state a fresh
/// replay of the same journal would reach, because the body is deterministic and sees the same rounds.
///
/// One holder drives it at a time: the shard's write transaction, or the cache's eviction after
/// taking it out.
final class WorkflowExecution: Sendable {
    private final class Outcome: Sendable {
        let value = Mutex<Result<String, any Error>?>(nil)
    }

    let context: WorkflowContext
    private let pump: ReplayPump
    private let outcome = Outcome()
    private let task: Task<Void, Never>

    /// Starts the body; it runs only when the pump is drained.
    init(definition: WorkflowDefinition, context: WorkflowContext, args: String, crashSite: CrashSite? = nil) {
        self.context = context
        let pump = ReplayPump(crashSite: crashSite)
        self.pump = pump
        let outcome = self.outcome
        task = Task(executorPreference: pump) {
            let result: Result<String, any Error>
            do {
                result = .success(try await definition.run(context, args))
            } catch {
                result = .failure(error)
            }
            outcome.value.withLock { $0 = result }
        }
    }

    /// The body returned or threw (after `terminate()`, it has unwound).
    var isFinished: Bool { outcome.value.withLock { $0 != nil } }

    /// A fresh replay: the first pass, then each round of journaled results in order.
    /// - Parameter rounds: the journal entries to deliver after the first pass, one array per round.
    func replay(rounds: [[Int]], hasPendingEntries: Bool) -> ReplayOutcome {
        pump.drain()
        for round in rounds {
            if isFinished { break }
            context.release(round)
            pump.drain()
        }
        return settle(hasPendingEntries: hasPendingEntries)
    }

    /// A kept execution: delivers the results that arrived since its last run (one round).
    func resume(with entries: [JournalEntry]) -> ReplayOutcome {
        if !isFinished {
            context.deliver(entries)
            pump.drain()
        }
        return settle(hasPendingEntries: context.isAwaitingJournal)
    }

    /// Ends a body that will not be resumed: every pending call throws, and later calls throw at once.
    func terminate() {
        guard !isFinished else { return }
        context.suspendAll()
        task.cancel()
        pump.drain()
    }

    private func settle(hasPendingEntries: Bool) -> ReplayOutcome {
        let finished = outcome.value.withLock { $0 }
        let state = context.takeRunState()
        // Checked first: a body that caught the error and went on must not be taken at its word.
        if let violation = state.violation {
            terminate()
            return .violated(violation)
        }
        if let unrunnable = state.unrunnable {
            terminate()
            return .unrunnable(unrunnable)
        }
        switch finished {
        case .success(let result)?:
            return .completed(result: result, markers: state.commands.filter { !$0.isWait })
        case .failure(let error)?:
            return .failed(Self.errorInfo(error), markers: state.commands.filter { !$0.isWait })
        case nil:
            if !state.commands.contains(where: \.isWait) && !hasPendingEntries {
                terminate()
                return .failed(WorkflowErrorInfo(
                    message: "workflow body is suspended on something other than its workflow context", step: nil),
                    markers: [])
            }
            return .waiting(commands: state.commands)
        }
    }

    static func errorInfo(_ error: any Error) -> WorkflowErrorInfo {
        switch error {
        case let failure as StepFailedError:
            return WorkflowErrorInfo(message: failure.message, step: failure.step)
        case let violation as DeterminismViolation:
            return WorkflowErrorInfo(message: violation.description, step: nil)
        default:
            return WorkflowErrorInfo(message: String(describing: error), step: nil)
        }
    }
}
