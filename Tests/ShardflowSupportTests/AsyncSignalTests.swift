import ShardflowSupport
import Synchronization
import Testing

@Suite struct AsyncSignalTests {
    @Test func notificationsBeforeAWaitCoalesceIntoOne() async {
        let signal = AsyncSignal()
        signal.notify()
        signal.notify()
        signal.notify()
        await signal.wait()  // returns at once: a notification is pending
        // The three notifications were one: the next wait must block until a new one.
        let woke = Flag()
        let waiter = Task {
            await signal.wait()
            woke.set()
        }
        try? await Task.sleep(for: .milliseconds(100))
        #expect(!woke.isSet, "a second wait returned without a new notification")
        signal.notify()
        await waiter.value
        #expect(woke.isSet)
    }

    @Test func notifyWakesAWaiterThatIsAlreadyWaiting() async {
        let signal = AsyncSignal()
        let started = AsyncSignal()
        let waiter = Task {
            started.notify()
            await signal.wait()
            return true
        }
        await started.wait()
        try? await Task.sleep(for: .milliseconds(20))  // let the waiter suspend
        signal.notify()
        #expect(await waiter.value)
    }

    @Test func cancellingTheWaitingTaskEndsTheWait() async {
        let signal = AsyncSignal()
        let waiter = Task { await signal.wait() }
        try? await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        await waiter.value  // would hang if cancellation did not resume the waiter
    }
}

private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
