import Synchronization

/// A task executor that runs nothing by itself: `drain()` runs its queued jobs one by one, in FIFO
/// order, on the calling thread. Running a workflow body on it makes child-task order deterministic
/// and makes "the body cannot go on" observable: the queue is empty.
final class ReplayPump: TaskExecutor {
    private let jobs = Mutex<[UnownedJob]>([])
    /// Set on the draining thread, so a trap in the body is recorded as this workflow's.
    private let crashSite: CrashSite?

    init(crashSite: CrashSite?) { self.crashSite = crashSite }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        jobs.withLock { $0.append(unowned) }
    }

    /// Runs jobs until none is queued. Returns how many ran.
    @discardableResult
    func drain() -> Int {
        guard let crashSite else { return drainJobs() }
        return crashSite.attributing { drainJobs() }
    }

    private func drainJobs() -> Int {
        var ran = 0
        while true {
            let batch: [UnownedJob] = jobs.withLock { queue in
                let taken = queue
                queue.removeAll(keepingCapacity: true)
                return taken
            }
            if batch.isEmpty { return ran }
            for job in batch {
                job.runSynchronously(on: asUnownedTaskExecutor())
                ran += 1
            }
        }
    }
}
