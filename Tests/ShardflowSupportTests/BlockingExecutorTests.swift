import Foundation
import ShardflowSupport
import Synchronization
import Testing

@Suite struct BlockingExecutorTests {
    @Test func aCancelledCallerStopsWaitingAtOnceAndItsQueuedJobIsSkipped() async throws {
        // The consumer's blocking calls run one after another on one thread: a caller queued behind a slow
        // one, once cancelled, must not wait for it (a revoke cancels a shard's open this way).
        let executor = BlockingExecutor(name: "test-blocking")
        let release = OnceFlag()
        let slow = Task { try await executor.run { while !release.isSet { usleep(1_000) }; return 1 } }
        let ran = Mutex(false)
        let queued = Task { try await executor.runUnlessCancelled { ran.withLock { $0 = true }; return 2 } }
        try await Task.sleep(for: .milliseconds(200))
        let started = ContinuousClock.now
        queued.cancel()
        await #expect(throws: CancellationError.self) { try await queued.value }
        #expect(ContinuousClock.now - started < .seconds(1))
        release.setOnce()
        #expect(try await slow.value == 1)
        // The job it queued was skipped, not run late.
        #expect(try await executor.run { 3 } == 3)
        #expect(ran.withLock { $0 } == false)
        #expect(try await executor.runUnlessCancelled { 4 } == 4)
        executor.shutdown()
    }
}
