import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An OS thread that runs one closure, for blocking calls (librdkafka's poll, close and admin waits, a
/// child process's waitpid) that must never run on Swift's cooperative thread pool.
public final class DedicatedThread: Sendable {
    // `nonisolated(unsafe)`: written once in `init` before any other thread can see the object, then
    // only read by `join`, which is called at most once (guarded by `joined`).
    nonisolated(unsafe) private var thread: pthread_t? = nil
    private let joined = OnceFlag()

    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
        var handle = pthread_t()
        let result = pthread_create(&handle, nil, { raw in
            let body = Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue()
            body.body()
            return nil
        }, box)
        precondition(result == 0, "pthread_create failed: \(result)")
        thread = handle
    }

    /// Waits for the closure to return. Safe to call more than once and from any thread but the thread itself.
    public func join() {
        guard joined.setOnce(), let thread else { return }
        pthread_join(thread, nil)
    }
}

private final class ThreadBody {
    let name: String
    let body: @Sendable () -> Void
    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}

/// A flag that is set once; `setOnce` returns true only for the first caller. Nothing ever waits on it,
/// so it is an atomic rather than a lock.
public final class OnceFlag: Sendable {
    private let value = Atomic<Bool>(false)

    public init() {}

    @discardableResult
    public func setOnce() -> Bool {
        value.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged
    }

    public var isSet: Bool { value.load(ordering: .acquiring) }
}
