/// One durable operation of a workflow (a step, a sleep or an event wait), numbered in call order from 1.
///
/// A patch marker (`WorkflowContext.patched`) is journaled too, as kind `patch` with status `recorded`
/// and a negative number (-1 for the workflow's first marker, -2 for the next): it is not an
/// operation, so it takes no place in the numbering the body's calls are checked against, and adding
/// or removing a patch call never shifts the operations after it.
struct JournalEntry: Sendable, Equatable {
    enum Kind: String, Sendable, CaseIterable { case step, sleep, event, patch }
    enum Status: String, Sendable, CaseIterable {
        case pending, succeeded, failed, fired, received, timedOut, recorded
        var isResolved: Bool { self != .pending }
    }

    var seq: Int
    var kind: Kind
    var name: String
    var status: Status
    var output: String?
    var error: String?
    var attempts: Int
    /// The replay generation that first delivered this result to the body (nil until one has).
    var round: Int?
    var completedAt: Int64?
}

/// A durable operation a replay asked for that the journal did not have yet.
enum NewCommand: Sendable, Equatable {
    case step(seq: Int, name: String, input: String, retry: RetryPolicy)
    case sleep(seq: Int, milliseconds: Int64)
    case waitForEvent(seq: Int, name: String, timeoutMilliseconds: Int64?)
    /// A patch marker: the body took the new branch of `patched(name)` (seq is negative, see `JournalEntry`).
    case patch(seq: Int, name: String)

    var seq: Int {
        switch self {
        case .step(let seq, _, _, _), .sleep(let seq, _), .waitForEvent(let seq, _, _), .patch(let seq, _): return seq
        }
    }

    /// Whether the body waits for this operation's result (a marker is recorded and done).
    var isWait: Bool {
        if case .patch = self { return false }
        return true
    }
}

/// A step failed for good; thrown by `WorkflowContext.run` so the body can catch it or fail with it.
public struct StepFailedError: Error, Sendable, Equatable, CustomStringConvertible {
    public let step: String
    public let message: String
    public var description: String { "step \(step) failed: \(message)" }
}

/// An error a step throws may say whether another attempt can succeed. One that says no fails the step at
/// once, whatever its retry policy allows (an HTTP 400, an input the step refuses); errors that do not
/// conform are retried by the policy.
public protocol StepFailureClassifying: Error {
    var isRetryable: Bool { get }
}

/// Throw from a step to fail it at once, without retries.
public struct PermanentStepFailure: StepFailureClassifying, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    public var isRetryable: Bool { false }
    public init(_ description: String) { self.description = description }
}

/// The body did something other than what its journal recorded.
public struct DeterminismViolation: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
}

/// The body asked for a step this worker does not have (thrown by `WorkflowContext.run`). The workflow is
/// parked, not failed: a worker that has the step (a fixed deploy, a rollback) runs it on.
public struct UnregisteredStepError: Error, Sendable, Equatable, CustomStringConvertible {
    public let step: String
    public var description: String { "step \(step) is not registered in this worker" }
}

/// Thrown into a body's pending calls when its replay ends with the workflow still waiting.
struct ReplaySuspended: Error {}
