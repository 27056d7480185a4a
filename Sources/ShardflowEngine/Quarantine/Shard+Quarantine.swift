import GRDB

/// Quarantine: a workflow whose code keeps killing the process is failed instead of run again, so one
/// trapping body or step cannot crash-loop every worker its shard moves to.
extension Shard {
    /// Applies the crash guard's record of the last owner's death (read when the store opened): one more
    /// death for the workflow that was running, and quarantine once it reaches the configured count.
    func recordCrash(_ record: CrashRecord) throws {
        let subject = record.subject
        let outcome: (crashes: Int, quarantined: Bool)? = try transaction { tx in
            try tx.run("UPDATE workflows SET crashes = crashes + 1 WHERE id = ? AND status = 'running'", subject.workflowId)
            guard tx.changes > 0, let workflow = try tx.loadWorkflow(subject.workflowId) else { return nil }
            let crashes = Int(try tx.int("SELECT crashes FROM workflows WHERE id = ?", subject.workflowId) ?? 1)
            metrics.workflowCrashes.increment()
            guard crashes >= configuration.quarantineAfterCrashes else { return (crashes, false) }
            let now = tx.now
            var stepName: String?
            let place: String
            if let stepId = subject.stepId {
                stepName = try tx.row("SELECT name FROM journal WHERE workflowId = ? AND seq = ?", subject.workflowId, stepId,
                                      as: { $0[0] as String })
                place = "step \(stepId) (\(stepName ?? "unknown"))"
            } else {
                place = "workflow body"
            }
            let message = "quarantined: its \(place) stopped the worker \(crashes) times (last by \(record.signalName)); "
                + "the workflow is failed so that its shard can go on"
            if let stepId = subject.stepId {
                try tx.run("UPDATE journal SET status = 'failed', error = ?, completedAt = ? WHERE workflowId = ? AND seq = ? AND status = 'pending'",
                           message, now, subject.workflowId, stepId)
            }
            try tx.completeWorkflow(workflow, status: .failed, result: nil, error: WorkflowErrorInfo(message: message, step: stepName))
            try tx.run("UPDATE workflows SET quarantined = 1 WHERE id = ?", subject.workflowId)
            metrics.workflowsQuarantined.increment()
            return (crashes, true)
        }
        guard let outcome else {
            logger.warning("the last owner died (\(record.signalName)) in the code of workflow \(subject.workflowId), which is no longer running")
            return
        }
        let place = subject.stepId.map { "step \($0)" } ?? "body"
        if outcome.quarantined {
            logger.error("workflow \(subject.workflowId) quarantined: its \(place) stopped the worker \(outcome.crashes) times (last by \(record.signalName))")
        } else {
            logger.warning("the last owner died (\(record.signalName)) in the \(place) of workflow \(subject.workflowId) (\(outcome.crashes) of \(configuration.quarantineAfterCrashes) before quarantine); running it again")
        }
    }
}
