import ShardflowEngine

/// Workflows for fault drills, registered only with `shardflow worker --drill-workflows`: they stop the
/// worker on demand, the way a bug in workflow code would, to show that a crashing workflow is
/// quarantined and the rest of the group goes on.
public enum DrillWorkflows {
    public static func register(in registry: inout WorkflowRegistry) {
        registry.registerStep("drill-trap", input: DrillTrapArgs.self, output: Int.self) { args, _ in
            if args.in == .step { trap(args.message) }
            return 0
        }
        registry.registerWorkflow("drill-trap", args: DrillTrapArgs.self, result: Int.self, validate: { args in
            guard args.message.utf8.count <= 1000 else { throw InvalidArgs("message must be at most 1000 bytes") }
        }) { ctx, args in
            _ = try await ctx.run("drill-trap", args, as: Int.self)
            if args.in == .body { trap(args.message) }
            return 1
        }
    }

    /// Stops the process as a failed precondition in workflow code does (a trap: SIGILL or SIGTRAP).
    static func trap(_ message: String) -> Never {
        preconditionFailure("drill-trap: \(message)")
    }
}

/// `{"in": "step" | "body", "message": "..."}`: where `drill-trap` traps (after its one step, for `body`).
public struct DrillTrapArgs: Codable, Sendable {
    public enum Place: String, Codable, Sendable { case step, body }
    public var `in`: Place
    public var message: String
}
