import Foundation
import ShardflowSupport
import Synchronization
import Testing

@Suite(.timeLimit(.minutes(1))) struct BlockingExecutorTests {
    @Test func aCancelledCallerStopsWaitingAtOnceAndItsQueuedJobIsSkipped() async throws {
        // The consumer's blocking calls run one after another on one thread: a caller queued behind a slow
        // one, once cancelled, must not wait for it (a revoke cancels a shard's open this way).
        let executor = BlockingExecutor(name: "test-blocking")
        let release = OnceFlag()
        let blocking = OnceFlag()
        let slow = Task {
            try await executor.run {
                blocking.setOnce()
                while !release.isSet { usleep(1_000) }
                return 1
            }
        }
        while !blocking.isSet { try await Task.sleep(for: .milliseconds(10)) }
        let ran = Mutex(false)
        let queued = Task { try await executor.runUnlessCancelled { ran.withLock { $0 = true }; return 2 } }
        try await Task.sleep(for: .milliseconds(200))
        queued.cancel()
        // The blocked job is released only after the cancelled caller has returned: had it waited for its
        // turn, this would never return (and the suite's time limit fails it).
        await #expect(throws: CancellationError.self) { try await queued.value }
        release.setOnce()
        #expect(try await slow.value == 1)
        // The job it queued was skipped, not run late.
        #expect(try await executor.run { 3 } == 3)
        #expect(ran.withLock { $0 } == false)
        #expect(try await executor.runUnlessCancelled { 4 } == 4)
        executor.shutdown()
    }
}
