import Testing
@testable import Shardflow

/// The worker's ownership of each shard, as a state machine: transitions the state does not allow throw,
/// and a revoke hands back the open still running so the worker cancels it instead of waiting behind it.
@Suite struct ShardOwnershipTests {
    @Test func aRevokeWhileOpeningCancelsTheOpenAndSettlesWithoutWaitingForIt() throws {
        var ownership = ShardOwnerships<String>()
        try ownership.assign(3)
        let open = Task<Void, Never> { try? await Task.sleep(for: .seconds(60)) }
        ownership.opening(3, task: open)
        #expect(ownership.opening == [3])

        let action = ownership.revoke(3)
        guard case .cancelOpening(let task) = action else {
            Issue.record("a revoke while opening must cancel the open, not \(action)")
            return
        }
        #expect(task == open)
        #expect(action.openTask == open)
        #expect(ownership.opening.isEmpty)
        // Settling: a second revoke does nothing, a new assignment must wait for the settle.
        guard case .none = ownership.revoke(3) else { Issue.record("a second revoke must do nothing"); return }
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.assign(3) }
        try ownership.settled(3)
        try ownership.assign(3)
        open.cancel()
    }

    @Test func transitionsTheStateDoesNotAllowThrow() throws {
        var ownership = ShardOwnerships<String>()
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.settled(1) }
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.refuse(1) }
        try ownership.assign(1)
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.assign(1) }
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.settled(1) }
        try ownership.refuse(1)
        #expect(ownership.refused == [1])
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.refuse(1) }
        // A refused shard is closed by its revoke, with nothing to cancel or settle.
        let action = ownership.revoke(1)
        guard case .none = action else { Issue.record("a refused shard's revoke must do nothing, not \(action)"); return }
        #expect(action.openTask == nil)
        #expect(ownership.refused.isEmpty)
        // An open that failed leaves the shard closed: it can be assigned again.
        try ownership.assign(1)
        ownership.openFailed(1)
        #expect(ownership.opening.isEmpty)
        try ownership.assign(1)
    }

    @Test func aShardItsLogStoppedIsReportedUntilItsRevokeSettlesIt() throws {
        var ownership = ShardOwnerships<String>()
        try ownership.assign(5)
        #expect(try ownership.opened(5, "shard 5") == .run)
        #expect(ownership.runningShard(5) == "shard 5")

        try ownership.stop(5, reason: "claimed in its log by other/42")
        // Nothing runs it here, but the group still assigns it: reported, and no new assignment before the revoke.
        #expect(ownership.running.isEmpty)
        #expect(ownership.runningShard(5) == nil)
        #expect(ownership.assignedShard(5) == "shard 5")
        #expect(ownership.stopped == [5: "claimed in its log by other/42"])
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.assign(5) }
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.opened(5, "again") }
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.stop(5, reason: "twice") }

        // Its revoke settles what ran it, like a running shard's.
        guard case .settle(let owned, _) = ownership.revoke(5) else { Issue.record("a stopped shard's revoke must settle it"); return }
        #expect(owned == "shard 5")
        #expect(ownership.stopped.isEmpty)
        // Its log may stop it while it settles: the revoke came first, and settling goes on.
        try ownership.stop(5, reason: "late")
        #expect(ownership.stopped.isEmpty)
        try ownership.settled(5)
        #expect(ownership.assignedShard(5) == nil)
        // Only a running shard can be stopped.
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.stop(5, reason: "closed") }
        try ownership.assign(5)
        #expect(throws: ShardOwnerships<String>.IllegalTransition.self) { try ownership.stop(5, reason: "opening") }
    }
}
