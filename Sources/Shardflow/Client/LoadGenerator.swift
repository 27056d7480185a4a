import Foundation
import ShardflowEngine
import ShardflowJSON
import ShardflowSupport

/// Generates loads of starts with unique, zero-padded increasing ids. `WorkflowClient.startAll` stamps each
/// batch's `createdAt` when it sends it, so createdAt never decreases and ties are broken by the id: the FIFO
/// order of the run, (createdAt, workflowId), is the creation order, and completion times are measured from
/// the real submission time.
public enum LoadGenerator {
    /// A short id unique to this run (time-based), e.g. `wf-m3k9x2`.
    public static func runId(prefix: String) -> String {
        let millis = UInt64(Date().timeIntervalSince1970 * 1000)
        return "\(prefix)-\(String(millis, radix: 36))"
    }

    public static func starts(workflow: String, args: JSONValue, count: Int, idPrefix: String,
                              version: Int? = nil) -> [StartMessage] {
        let run = runId(prefix: idPrefix)
        let width = String(max(count - 1, 0)).count
        return (0..<count).map { index in
            StartMessage(workflowId: "\(run)-\(String(zeroPadded: index, width: width))", workflow: workflow, args: args, version: version)
        }
    }
}
