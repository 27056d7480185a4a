import ShardflowSupport
import Synchronization

/// The shard's wake-ups, each hint paired with the signal that wakes its loop.
///
/// A hint says "there may be work": the work loop skips a transaction whose hint is clear. A writer
/// raises it inside its transaction (before the commit: a later transaction that finds it clear may
/// rely on there being nothing, see `ShardReplayer.replay`); the loop takes it just before the
/// transaction that looks. A rollback only leaves a spurious hint.
final class WorkSignals: Sendable {
    /// One "there may be work" flag.
    struct Hint: ~Copyable, Sendable {
        private let flag = Atomic<Bool>(true)

        func raise() { flag.store(true, ordering: .releasing) }
        /// Clears the hint and says whether it was raised.
        func take() -> Bool { flag.exchange(false, ordering: .acquiringAndReleasing) }
        var isRaised: Bool { flag.load(ordering: .acquiring) }
    }

    /// Replay-queue rows may be waiting.
    let replay = Hint()
    /// Ready tasks may be waiting.
    let claim = Hint()
    /// The events table may hold rows (events sent before their wait): a completing workflow deletes its
    /// own only then. Set at open from the store, raised by every insert, never cleared while open.
    let storedEvents = Hint()

    /// Wakes the work loop: a replay row, a task, a step result, a free outbox slot or a stop.
    let work = AsyncSignal()
    /// Wakes the timer loop: a timer or a retry backoff was added.
    let timers = AsyncSignal()
    /// Wakes outbox publishers: rows were appended, or the shard closes.
    let outbox = AsyncSignal()
    /// The last in-flight step finished.
    let drained = AsyncSignal()

    /// After a commit: wakes the loops its changes concern.
    func wake(_ effects: TransactionEffects) {
        if effects.replay { replay.raise() }
        if effects.tasks { claim.raise() }
        if effects.replay || effects.tasks { work.notify() }
        if effects.timers { timers.notify() }
        if effects.outbox { outbox.notify() }
    }

    /// Something other than a queued row may have changed what can be claimed or replayed (an epoch,
    /// an operation, a failure): look at everything again.
    func lookAgain() {
        replay.raise()
        claim.raise()
        work.notify()
    }
}
