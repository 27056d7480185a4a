import Foundation
import ShardflowEngine
import ShardflowJSON

/// One readable line per published message, for `shardflow tail`.
public enum TailRendering {
    public static func line(stream: String, json: [UInt8]) -> String? {
        switch stream {
        case "completions":
            guard let c = try? JSONCoding.decode(CompletionEvent.self, from: json) else { return nil }
            let detail = c.error.map { "error: \($0.message)" + ($0.step.map { " (step \($0))" } ?? "") } ?? ""
            return "\(c.eventId)  \(c.workflowId)  \(c.workflow)  \(c.status.rawValue)  \(c.steps) steps  \(c.completedAt - c.createdAt) ms  \(detail)"
        case "replays":
            guard let r = try? JSONCoding.decode(ReplayEvent.self, from: json) else { return nil }
            return "\(r.eventId)  \(r.workflowId)  gen \(r.generation)  \(r.trigger.rawValue) → \(r.outcome.rawValue)  consumed \(r.consumed.map(\.name)) scheduled \(r.scheduled.map(\.name))"
        case "control-results":
            guard let r = try? JSONCoding.decode(ControlResult.self, from: json) else { return nil }
            return ControlRendering.table([r]).split(separator: "\n").last.map(String.init)
        case "dead-letters":
            guard let d = try? JSONCoding.decode(DeadLetter.self, from: json) else { return nil }
            return "\(d.sourceTopic)[\(d.partition)]@\(d.offset)  key \(d.key ?? "-")  \(d.error)"
        default:
            return nil
        }
    }
}
