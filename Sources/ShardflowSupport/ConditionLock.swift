#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable. The Swift concurrency primitives cannot block a thread, but
/// librdkafka's poll threads must wait (back-pressure, rebalance acknowledgement), so this wraps pthreads.
/// It is the one pthread lock: state that no thread waits on a condition for belongs in Synchronization's
/// `Mutex` (or an `Atomic`).
///
/// `@unchecked Sendable`: the pthread mutex and condition are heap-allocated once, never moved, and
/// only touched through pthread calls, which are thread-safe by definition.
public final class ConditionLock: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    public init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Waits (the lock must be held, i.e. call inside `withLock`) until signalled or `seconds` passed.
    public func wait(seconds: Double) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let whole = Int(seconds)
        var nanos = Int(now.tv_nsec) + Int((seconds - Double(whole)) * 1_000_000_000)
        var secs = Int(now.tv_sec) + whole
        if nanos >= 1_000_000_000 {
            secs += 1
            nanos -= 1_000_000_000
        }
        var deadline = timespec(tv_sec: secs, tv_nsec: nanos)
        pthread_cond_timedwait(condition, mutex, &deadline)
    }

    public func broadcast() {
        pthread_cond_broadcast(condition)
    }
}
