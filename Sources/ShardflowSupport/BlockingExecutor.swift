/// Runs blocking calls (librdkafka's commit, metadata, admin requests and close; the local object store's
/// HTTP probes) one after another on a dedicated thread and hands the results back to async callers, so
/// they never block the cooperative pool and never depend on a poll thread that may itself be waiting on
/// the application.
public final class BlockingExecutor: Sendable {
    private let lock: ConditionLock
    private let queue: JobQueue
    private let thread: DedicatedThread
    private let refusal: any Error & Sendable

    /// `refusal` is what `run` throws once the executor is shut down.
    public init(name: String, refusal: any Error & Sendable = BlockingExecutorShutDown()) {
        self.refusal = refusal
        let lock = ConditionLock()
        let queue = JobQueue()
        self.lock = lock
        self.queue = queue
        thread = DedicatedThread(name: name) {
            while let job = queue.take(lock: lock) { job() }
        }
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            let accepted = queue.put(lock: lock) {
                continuation.resume(with: Result { try body() })
            }
            if !accepted { continuation.resume(throwing: refusal) }
        }
    }

    /// Lets queued jobs finish, then ends the thread.
    public func shutdown() {
        queue.stop(lock: lock)
        thread.join()
    }
}

/// What a shut-down `BlockingExecutor` throws unless it was given its own refusal.
public struct BlockingExecutorShutDown: Error, CustomStringConvertible, Sendable {
    public init() {}
    public var description: String { "the blocking executor is shut down" }
}

/// The job list of a `BlockingExecutor`.
///
/// `@unchecked Sendable`: every member is only read or written while the executor's lock is held.
private final class JobQueue: @unchecked Sendable {
    private var jobs: [@Sendable () -> Void] = []
    private var stopping = false

    func put(lock: ConditionLock, _ job: @escaping @Sendable () -> Void) -> Bool {
        lock.withLock {
            if stopping { return false }
            jobs.append(job)
            lock.broadcast()
            return true
        }
    }

    func take(lock: ConditionLock) -> (@Sendable () -> Void)? {
        lock.withLock {
            while jobs.isEmpty {
                if stopping { return nil }
                lock.wait(seconds: 1)
            }
            return jobs.removeFirst()
        }
    }

    func stop(lock: ConditionLock) {
        lock.withLock {
            stopping = true
            lock.broadcast()
        }
    }
}
