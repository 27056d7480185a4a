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
    /// The workflow's createdAt (milliseconds): the FIFO key, for steps that queue for something shared
    /// (an LLM rate limit) and should keep the earliest-created workflow first.
    public var workflowCreatedAt: Int64 = 0
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
    /// Versions of one name are separate bodies: a workflow runs on the version it started with.
    public let version: Int
    public let retry: RetryPolicy?
    let validateArgs: @Sendable (_ args: String) throws -> Void
    let run: @Sendable (_ context: WorkflowContext, _ args: String) async throws -> String
}

/// The workflows (by name and version) and steps (by name) a worker knows. Built once at start-up, then
/// shared.
public struct WorkflowRegistry: Sendable {
    /// Every registered version of each workflow.
    public private(set) var versions: [String: [Int: WorkflowDefinition]] = [:]
    public private(set) var steps: [String: StepDefinition] = [:]

    public init() {}

    /// The newest registered version of each workflow.
    public var workflows: [String: WorkflowDefinition] {
        versions.compactMapValues { byVersion in byVersion.max { $0.key < $1.key }?.value }
    }

    /// The newest registered version of `name`, if any (what a start that names no version gets).
    public func newestVersion(of name: String) -> Int? { versions[name]?.keys.max() }

    /// The definition of `name` at `version`, if this worker has it.
    public func workflow(_ name: String, version: Int) -> WorkflowDefinition? { versions[name]?[version] }

    /// The versions from `1...maxVersion` a start may name.
    public static let maxVersion = MessageLimits.maxWorkflowVersion

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
    /// `version` (1 by default) lets a changed body be registered beside the old one: a start names a
    /// version or gets the newest, and a workflow keeps the version it started with, so the old body
    /// can stay until no workflow runs on it (see docs/deploying.md).
    /// `validate` checks decoded args before a start is accepted (throw `InvalidArgs`): a start whose args
    /// would make the body trap (a negative count, an absurd size) is dead-lettered with the reason
    /// instead of running.
    public mutating func registerWorkflow<Args: Codable & Sendable, Result: Codable & Sendable>(
        _ name: String, version: Int = 1, args: Args.Type = Args.self, result: Result.Type = Result.self,
        retry: RetryPolicy? = nil, validate: (@Sendable (Args) throws -> Void)? = nil,
        _ body: @escaping @Sendable (WorkflowContext, Args) async throws -> Result
    ) {
        precondition((1...Self.maxVersion).contains(version), "workflow versions are 1 to \(Self.maxVersion), got \(version)")
        versions[name, default: [:]][version] = WorkflowDefinition(
            name: name, version: version, retry: retry,
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
