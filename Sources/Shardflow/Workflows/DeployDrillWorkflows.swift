import ShardflowEngine

/// Two releases of the same workflow code, registered with `shardflow worker --drill-deploy 1|2`, to show
/// what a deploy does to workflows in flight. Each workflow runs a step, waits for the event `go`, and
/// returns which code it ran. Release 2 changes them three ways:
/// - `drill-patched` adds a step behind `patched("add-critique")`: in-flight workflows keep the old path;
/// - `drill-unpatched` adds the same step unguarded: in-flight workflows violate determinism and are
///   parked (a rollback to release 1 runs them on);
/// - `drill-versioned` registers version 2 beside version 1: each workflow runs the version it started on.
/// Release 2 alone has the step `drill-critique`.
public enum DeployDrillWorkflows {
    public struct Result: Codable, Sendable, Equatable {
        public var path: String
        public var version: Int
        public init(path: String, version: Int) {
            self.path = path
            self.version = version
        }
    }

    public static func register(in registry: inout WorkflowRegistry, release: Int) {
        registry.registerStep("drill-note", input: String.self, output: String.self) { text, _ in text }
        if release >= 2 {
            registry.registerStep("drill-critique", input: String.self, output: String.self) { text, _ in "critique of \(text)" }
        }

        registry.registerWorkflow("drill-patched", args: String.self, result: Result.self) { ctx, topic in
            _ = try await ctx.run("drill-note", "draft: \(topic)", as: String.self)
            if release >= 2 && ctx.patched("add-critique") {
                _ = try await ctx.run("drill-critique", "draft: \(topic)", as: String.self)
                _ = try await ctx.waitForEvent("go")
                _ = try await ctx.run("drill-note", "final: \(topic)", as: String.self)
                return Result(path: "new", version: ctx.workflowVersion)
            }
            _ = try await ctx.waitForEvent("go")
            _ = try await ctx.run("drill-note", "final: \(topic)", as: String.self)
            return Result(path: "old", version: ctx.workflowVersion)
        }

        registry.registerWorkflow("drill-unpatched", args: String.self, result: Result.self) { ctx, topic in
            _ = try await ctx.run("drill-note", "draft: \(topic)", as: String.self)
            if release >= 2 {
                _ = try await ctx.run("drill-critique", "draft: \(topic)", as: String.self)  // unsafe: not patched
            }
            _ = try await ctx.waitForEvent("go")
            _ = try await ctx.run("drill-note", "final: \(topic)", as: String.self)
            return Result(path: release >= 2 ? "new" : "old", version: ctx.workflowVersion)
        }

        registry.registerWorkflow("drill-versioned", version: 1, args: String.self, result: Result.self) { ctx, topic in
            _ = try await ctx.run("drill-note", "v1: \(topic)", as: String.self)
            _ = try await ctx.waitForEvent("go")
            return Result(path: "old", version: ctx.workflowVersion)
        }
        if release >= 2 {
            registry.registerWorkflow("drill-versioned", version: 2, args: String.self, result: Result.self) { ctx, topic in
                _ = try await ctx.run("drill-critique", "v2: \(topic)", as: String.self)
                _ = try await ctx.waitForEvent("go")
                _ = try await ctx.run("drill-note", "v2: \(topic)", as: String.self)
                return Result(path: "new", version: ctx.workflowVersion)
            }
        }
    }
}
