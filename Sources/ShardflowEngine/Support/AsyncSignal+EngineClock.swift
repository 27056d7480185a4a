import ShardflowSupport

extension AsyncSignal {
    /// Waits for a notification or until `deadline` on the given clock, whichever comes first.
    func wait(orUntil deadline: Int64?, clock: any EngineClock) async {
        guard let deadline else {
            await wait()
            return
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await clock.sleep(untilMilliseconds: deadline) }
            group.addTask { await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}
