import Synchronization

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

    /// Like `run`, for a call whose result is of no use to a caller that gave up (a seek, an offset lookup):
    /// a cancelled caller stops waiting at once and gets `CancellationError`; a job not yet begun is then
    /// skipped, and one already running finishes on the thread with its result dropped. So a caller is
    /// never held by a call that waits on something the caller's own cancellation would let finish.
    public func runUnlessCancelled<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let handoff = AbandonableJob<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                guard handoff.install(continuation) else { return }
                let accepted = queue.put(lock: lock) {
                    guard handoff.begin() else { return }
                    handoff.finish(Result { try body() })
                }
                if !accepted { handoff.finish(.failure(refusal)) }
            }
        } onCancel: {
            handoff.cancel()
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

/// One `runUnlessCancelled` call: its continuation is resumed exactly once, by the job's result or by the
/// caller's cancellation, whichever comes first.
private final class AbandonableJob<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, Error>?
        var cancelled = false
    }
    private let state = Mutex(State())

    /// False when the caller was cancelled before the job was queued (the continuation is resumed here).
    func install(_ continuation: CheckedContinuation<T, Error>) -> Bool {
        let cancelled = state.withLock { state in
            if !state.cancelled { state.continuation = continuation }
            return state.cancelled
        }
        if cancelled { continuation.resume(throwing: CancellationError()) }
        return !cancelled
    }

    /// False when the caller gave up before the job began: skip it.
    func begin() -> Bool {
        state.withLock { !$0.cancelled }
    }

    func finish(_ result: Result<T, Error>) {
        state.withLock { $0.continuation.take() }?.resume(with: result)
    }

    func cancel() {
        let continuation = state.withLock { state in
            state.cancelled = true
            return state.continuation.take()
        }
        continuation?.resume(throwing: CancellationError())
    }
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
