import Foundation
import Logging
import ShardflowJSON

/// What a running step knows about itself.
public struct StepContext: Sendable {
    public let workflowId: String
    public let stepId: Int
    public let name: String
    /// 1 for the first attempt.
    public let attempt: Int
    public let shard: Int
    public let logger: Logger
}

/// A registered step, type-erased to JSON text in and out so a queued task fully describes its work.
public struct StepDefinition: Sendable {
    public let name: String
    public let retry: RetryPolicy?
    let run: @Sendable (_ input: String, _ context: StepContext) async throws -> String
}

/// A typed handle to a registered step, for `WorkflowContext.run(_:_:)`.
public struct StepReference<Input: Codable & Sendable, Output: Codable & Sendable>: Sendable {
    public let name: String
}

/// A registered workflow, type-erased to JSON text.
public struct WorkflowDefinition: Sendable {
    public let name: String
    public let retry: RetryPolicy?
    let validateArgs: @Sendable (_ args: String) throws -> Void
    let run: @Sendable (_ context: WorkflowContext, _ args: String) async throws -> String
}

/// The workflows and steps a worker knows, by name. Built once at start-up, then shared.
public struct WorkflowRegistry: Sendable {
    public private(set) var workflows: [String: WorkflowDefinition] = [:]
    public private(set) var steps: [String: StepDefinition] = [:]

    public init() {}

    /// Registers a step. `retry` is this step's default policy (a call may override it).
    @discardableResult
    public mutating func registerStep<Input: Codable & Sendable, Output: Codable & Sendable>(
        _ name: String, input: Input.Type = Input.self, output: Output.Type = Output.self, retry: RetryPolicy? = nil,
        _ body: @escaping @Sendable (Input, StepContext) async throws -> Output
    ) -> StepReference<Input, Output> {
        steps[name] = StepDefinition(name: name, retry: retry) { inputText, context in
            let input: Input
            do {
                input = try JSONCoding.decode(Input.self, from: inputText)
            } catch {
                throw StepInputError(message: "input of step \(name) does not decode: \(error)")
            }
            return try JSONCoding.encodeString(try await body(input, context))
        }
        return StepReference(name: name)
    }

    /// Registers a workflow. `retry` is the default policy of its steps (below a step's own and a call's).
    /// `validate` checks decoded args before a start is accepted (throw `InvalidArgs`): a start whose args
    /// would make the body trap (a negative count, an absurd size) is dead-lettered with the reason
    /// instead of running.
    public mutating func registerWorkflow<Args: Codable & Sendable, Result: Codable & Sendable>(
        _ name: String, args: Args.Type = Args.self, result: Result.Type = Result.self, retry: RetryPolicy? = nil,
        validate: (@Sendable (Args) throws -> Void)? = nil,
        _ body: @escaping @Sendable (WorkflowContext, Args) async throws -> Result
    ) {
        workflows[name] = WorkflowDefinition(
            name: name, retry: retry,
            validateArgs: { text in
                let args = try JSONCoding.decode(Args.self, from: text)
                try validate?(args)
            },
            run: { context, argsText in
                let args = try JSONCoding.decode(Args.self, from: argsText)
                return try JSONCoding.encodeString(try await body(context, args))
            })
    }
}

/// Why a workflow's args are refused (thrown by a `validate` closure of `registerWorkflow`).
public struct InvalidArgs: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }

    /// Throws unless `value` is in `range`.
    public static func require<T: Comparable & CustomStringConvertible>(_ field: String, _ value: T?, in range: ClosedRange<T>) throws {
        guard let value else { return }
        guard range.contains(value) else {
            throw InvalidArgs("\(field) must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
    }
}

/// A step's input that does not decode: no attempt can do better.
struct StepInputError: StepFailureClassifying, CustomStringConvertible {
    let message: String
    var description: String { message }
    var isRetryable: Bool { false }
}
