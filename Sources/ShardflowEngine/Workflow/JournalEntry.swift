/// One durable operation of a workflow (a step, a sleep or an event wait), numbered in call order.
struct JournalEntry: Sendable, Equatable {
    enum Kind: String, Sendable { case step, sleep, event }
    enum Status: String, Sendable {
        case pending, succeeded, failed, fired, received, timedOut
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

    var seq: Int {
        switch self {
        case .step(let seq, _, _, _), .sleep(let seq, _), .waitForEvent(let seq, _, _): return seq
        }
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

/// Thrown into a body's pending calls when its replay ends with the workflow still waiting.
struct ReplaySuspended: Error {}
