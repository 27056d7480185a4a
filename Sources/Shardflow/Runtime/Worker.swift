import Foundation
import Logging
import Metrics
import ServiceLifecycle
import ShardflowEngine
import ShardflowKafka
import ShardflowSupport
import Synchronization

/// A Shardflow worker: joins the consumer group on the workflows topic and runs every shard the group gives it.
///
/// For each assigned partition p it opens shard p's store (waiting for a previous owner on this host to let go
/// of the store's lock), seeks the group consumer to the offset stored there, assigns itself control partition
/// p at its stored offset, starts the shard's loops, an outbox publisher and an intake. Inbound messages go to
/// their shard's intake, which applies them in batches, each with its offset in one transaction (I3); Kafka's group offsets are committed afterwards for
/// monitoring only, so a redelivered message is recognised by its offset and skipped. When a partition is
/// revoked the shard stops claiming, settles its in-flight steps and closes before the partition is handed over.
public final class Worker: Service, Sendable {
    public let configuration: WorkerConfiguration
    private let registry: WorkflowRegistry
    private let logger: Logger
    private let state = Mutex(State())
    /// The workflows topic's partition count, read from the broker before any shard opens (the routing check).
    private let partitionCount = Mutex<Int?>(nil)

    struct OwnedShard: Sendable {
        let shard: Shard
        /// Its inbound messages, queued for its own task to apply (see `ShardIntake`).
        let intake: ShardIntake
        let ingesting: Task<Void, Never>
        let publisher: OutboxPublisher
        let publishing: Task<Void, Never>
        /// Sends the shard's transactions to its log.
        let appending: Task<Void, Never>
        /// Reads the log back: confirms the shard's transactions, notices a newer claim.
        let following: Task<Void, Never>
    }

    private struct State {
        /// What the worker does with each shard the group gave it (see `ShardOwnerships`).
        var ownership = ShardOwnerships<OwnedShard>()
        var joinedGroup = false
        var brokerReachable = false
        var brokerError: String?
        var stopping = false
        /// The latest snapshot of each owned shard (see `ShardSnapshot`).
        var snapshots: [Int: ShardSnapshot] = [:]
        /// Shards restoring from their logs: the last log offset read and the offset of this worker's claim.
        var restoring: [Int: (read: Int64, end: Int64)] = [:]
    }

    /// Who claims shards in their logs: host and process, for operators reading a log.
    private let owner = "\(ProcessInfo.processInfo.hostName)/\(ProcessInfo.processInfo.processIdentifier)"

    public init(configuration: WorkerConfiguration, registry: WorkflowRegistry, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.logger = logger
    }

    /// The shards this worker runs now.
    public var ownedShards: [Int] { state.withLock { $0.ownership.running.keys.sorted() } }

    /// Runs until graceful shutdown (SIGTERM / SIGINT under a ServiceGroup) or cancellation.
    public func run() async throws {
        try Librdkafka.requireSupportedVersion()
        try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        let topics = configuration.topics
        let producer = try KafkaProducer(configuration: configuration.kafka, logger: logger)
        let admin = try KafkaAdmin(configuration: configuration.kafka, requestTimeout: .seconds(5), logger: logger)
        // Assigned partitions arrive paused: each is resumed by its shard's open, once positioned at the
        // store's offset, so the event loop never waits for an open (nor does a revoke behind it).
        let consumer = try KafkaConsumer(configuration: configuration.kafka, groupID: configuration.groupID,
                                         options: KafkaConsumerOptions(startsAssignedPartitionsPaused: true), logger: logger)
        let control = try KafkaPartitionConsumer(configuration: configuration.kafka, logger: logger)
        // The shard logs get a producer of their own: an owner's outputs wait for its records, so they
        // are not held up behind a large outbox batch, nor lingered over.
        let logProducer = try KafkaProducer(configuration: configuration.kafka.setting("linger.ms", "1").setting("compression.codec", "lz4"), logger: logger)
        let log = try ShardLogClient(topic: topics.shardLog, configuration: configuration.kafka, producer: logProducer,
                                     logger: logger)
        // Every shard checks that a message was read from the partition its workflowId maps to, which
        // needs the partition count; a worker that cannot learn it does not start.
        var warned = false
        while !Task.isCancelled {
            do {
                let partitions = try await admin.partitionCount(topic: topics.workflows)
                partitionCount.withLock { $0 = partitions }
                break
            } catch {
                if !warned { logger.warning("waiting for topic \(topics.workflows) to be readable: \(error)") }
                warned = true
                try? await Task.sleep(for: .seconds(1))
            }
        }
        try consumer.subscribe(topics: [topics.workflows])
        logger.info("worker started", metadata: [
            "group": "\(configuration.groupID)", "topic": "\(topics.workflows)",
            "dataDir": "\(configuration.dataDirectory)", "librdkafka": "\(Librdkafka.version)",
        ])

        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.consumeWorkflows(consumer: consumer, control: control, producer: producer, log: log) }
            group.addTask { await log.run() }
            group.addTask { await self.consumeControl(control) }
            group.addTask { await self.probeBroker(admin: admin) }
            group.addTask { await self.refreshGauges(consumer: consumer) }
            group.addTask { await self.commitOffsets(consumer: consumer) }
            group.addTask { await ExecutorLagProbe().run() }
            // Runs until SIGTERM / SIGINT (or cancellation).
            try? await gracefulShutdown()
            state.withLock { $0.stopping = true }
            logger.info("worker stopping: leaving the group, settling shards")
            // Leaving the group revokes every partition: the workflows loop settles the shards, then ends.
            await consumer.close()
            let left = state.withLock { $0.ownership.revokeAll() }
            await withTaskGroup(of: Void.self) { settling in
                for (number, action) in left { settling.addTask { await self.apply(action, to: number, log: log) } }
            }
            await control.close()
            await log.close()
            group.cancelAll()
        }
        await producer.close()
        await logProducer.close()
        logger.info("worker stopped")
    }

    /// What `/readyz` reports.
    public func readiness() -> ReadinessReport {
        state.withLock { state in
            var reasons: [String] = []
            if !state.joinedGroup { reasons.append("consumer group not joined yet") }
            let opening = state.ownership.opening.subtracting(state.restoring.keys)
            if !opening.isEmpty { reasons.append("opening shards \(opening.sorted())") }
            for (number, progress) in state.restoring.sorted(by: { $0.key < $1.key }) {
                reasons.append("restoring shard \(number) from its log: offset \(max(progress.read, -1) + 1) of \(progress.end + 1)")
            }
            if !state.brokerReachable { reasons.append("broker unreachable" + (state.brokerError.map { ": \($0)" } ?? "")) }
            if state.stopping { reasons.append("shutting down") }
            let refused = state.ownership.refused
            if !refused.isEmpty { reasons.append("shards \(refused.sorted()) were consumed before their logs began, and their stores are not here") }
            for (number, reason) in state.ownership.stopped.sorted(by: { $0.key < $1.key }) {
                reasons.append("shard \(number) stopped: \(reason); waiting for the group to take it back")
            }
            return ReadinessReport(reasons: reasons)
        }
    }

    // MARK: - inbound

    private func consumeWorkflows(consumer: KafkaConsumer, control: KafkaPartitionConsumer, producer: KafkaProducer,
                                  log: ShardLogClient) async {
        for await event in consumer.events {
            switch event {
            case .messages(let messages):
                await ingest(messages, stream: .workflows)
            case .assigned(let partitions):
                await assign(partitions, consumer: consumer, control: control, producer: producer, log: log)
            case .revoked(let partitions):
                await revoke(partitions, control: control, log: log)
            case .error(let error):
                logger.warning("kafka consumer: \(error)")
            }
        }
    }

    private func consumeControl(_ control: KafkaPartitionConsumer) async {
        for await event in control.events {
            switch event {
            case .messages(let messages): await ingest(messages, stream: .control)
            case .error(let error): logger.warning("kafka control consumer: \(error)")
            case .assigned, .revoked: break
            }
        }
    }

    /// Hands messages to their shards' intakes, in offset order per partition. Only a shard whose intake
    /// is full makes the loop wait (workflow messages only); a shard closed meanwhile (revoked) drops
    /// them, since its next owner reads them again from the offset in the store.
    private func ingest(_ messages: [KafkaMessage], stream: InboundMessage.Stream) async {
        let byPartition = Dictionary(grouping: messages, by: \.partition)
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        for (partition, batch) in byPartition {
            guard let owned = state.withLock({ $0.ownership.runningShard(Int(partition)) }) else { continue }
            let inbound = batch.map {
                InboundMessage(stream: stream, topic: $0.topic, partition: Int($0.partition), offset: $0.offset,
                               key: $0.key, value: $0.value, timestamp: $0.timestamp ?? now)
            }
            await owned.intake.append(inbound, waitForRoom: stream == .workflows)
        }
    }

    /// Group offsets are for monitoring (lag) and are where a consumer starts before the worker seeks it to
    /// the store's offset. So they must never pass what a later owner's store holds: each shard's offset is
    /// committed only as far as the shard log has confirmed the input (`durableWorkflowsOffset`), every
    /// second, off the ingest path.
    private func commitOffsets(consumer: KafkaConsumer) async {
        var committed: [Int: Int64] = [:]
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let running = state.withLock { $0.ownership.running }
            var offsets: [TopicPartitionOffset] = []
            for (number, owned) in running {
                guard let offset = owned.shard.durableWorkflowsOffset, offset != committed[number] else { continue }
                offsets.append(TopicPartitionOffset(topic: configuration.topics.workflows, partition: Int32(number), offset: offset))
                committed[number] = offset
            }
            guard !offsets.isEmpty else { continue }
            do {
                try await consumer.commit(offsets)
            } catch {
                for offset in offsets { committed[Int(offset.partition)] = nil }
                logger.debug("committing group offsets failed: \(error)")
            }
        }
    }

    // MARK: - rebalance

    /// Starts opening the assigned shards, concurrently and beside the event loop, so one slow or locked
    /// store holds up neither the other shards nor the next rebalance. The partitions arrive paused, so no
    /// message of a shard is read before its open has moved the consumer to the shard's stored offset (the
    /// store skips what lies below its next offset); the open resumes the partition after that.
    private func assign(_ partitions: [TopicPartition], consumer: KafkaConsumer, control: KafkaPartitionConsumer,
                        producer: KafkaProducer, log: ShardLogClient) async {
        let numbers = partitions.filter { $0.topic == configuration.topics.workflows }.map { Int($0.partition) }
        logger.info("assigned shards \(numbers.sorted())")
        for number in numbers {
            let accepted: Bool = state.withLock { state in
                state.joinedGroup = true
                do {
                    try state.ownership.assign(number)
                    return true
                } catch {
                    logger.error("\(error)")
                    return false
                }
            }
            guard accepted else { continue }
            let task = Task { await self.openShard(number, consumer: consumer, control: control, producer: producer, log: log) }
            state.withLock { $0.ownership.opening(number, task: task) }
        }
        if numbers.isEmpty { state.withLock { $0.joinedGroup = true } }
    }

    /// Opens one assigned shard and runs it: restores its store from its log, starts its loops, publisher,
    /// log appender and log follower, then points the consumers at its stored offsets and resumes its
    /// partition (after it runs, so nothing read from there on is dropped). Cancelled by a revoke, it stops
    /// where it is and gives back what it opened; its broker calls stop waiting at once.
    private func openShard(_ number: Int, consumer: KafkaConsumer, control: KafkaPartitionConsumer,
                           producer: KafkaProducer, log: ShardLogClient) async {
        let follower = ShardLogFollower(
            shard: number, client: log,
            snapshots: ShardSnapshots(topic: configuration.topics.shardSnapshots, client: log,
                                      configuration: configuration.kafka, logger: logger),
            snapshotEvery: configuration.snapshotEvery, directory: configuration.dataDirectory, logger: logger)
        guard let restored = await restore(number, follower: follower) else {
            state.withLock { $0.restoring[number] = nil; $0.ownership.openFailed(number) }
            return
        }
        state.withLock { $0.restoring[number] = nil }
        let appender = ShardLogAppender(shard: number, client: log, logger: logger)
        let shard: Shard
        do {
            var shardConfiguration = configuration.shard
            shardConfiguration.workflowsPartitionCount = partitionCount.withLock { $0 }
            shard = try await Shard.open(restored: restored.restore, writing: ShardLogWriting(epoch: restored.epoch, sink: appender),
                                         registry: registry, configuration: shardConfiguration)
        } catch {
            logger.error("shard \(number): cannot open its restored store: \(error)")
            restored.restore.close()
            await log.stopReading(shard: number)
            state.withLock { $0.ownership.openFailed(number) }
            return
        }
        let appending = Task { await appender.run() }
        let offsets: (workflows: Int64?, control: Int64?)
        do {
            offsets = try shard.nextOffsets()
        } catch {
            logger.error("shard \(number): cannot read its offsets: \(error)")
            offsets = (nil, nil)
        }
        // Only a log that held nothing before this worker's claim can predate the group's progress; a log
        // with history is the truth even when it lost the first ingest (the input is read again).
        if offsets.workflows == nil, restored.logWasEmpty, !configuration.adoptMissingStores,
           let committed = await groupProgress(of: number, consumer: consumer), committed > 0 {
            // The group has applied input of this shard, but its log holds none of it: it was consumed before
            // the shard log began, and its store is in another data directory. Starting empty would run its
            // workflows again, so the shard is left alone (and reported) until an operator decides.
            logger.critical("shard \(number): the group has consumed it up to offset \(committed) but its log holds none of that history and \(configuration.dataDirectory) has no store for it; not running it (run the shard once where its store is, so its log gets it, or pass --adopt-missing-stores to start it empty)")
            await giveBack(shard, number, appending: appending, log: log)
            state.withLock { state in
                do { try state.ownership.refuse(number) } catch { logger.info("\(error)") }
            }
            return
        }
        if Task.isCancelled {
            // Revoked while it opened: nothing was started, so nothing needs settling.
            await giveBack(shard, number, appending: appending, log: log)
            return
        }
        let publisher = OutboxPublisher(shard: shard, producer: producer, topics: configuration.topics, logger: logger)
        let action: ShardOwnerships<OwnedShard>.OpenedAction
        do {
            try shard.start()
            let publishing = Task { await publisher.run() }
            let following = Task {
                let ending = await follower.follow(shard, from: restored)
                await self.followingEnded(number, ending, shard: shard, publishing: publishing, consumer: consumer)
            }
            let intake = ShardIntake(shard: shard, logger: logger)
            let ingesting = Task { await intake.run() }
            let owned = OwnedShard(shard: shard, intake: intake, ingesting: ingesting, publisher: publisher,
                                   publishing: publishing, appending: appending, following: following)
            action = try state.withLock { try $0.ownership.opened(number, owned) }
            if case .close = action {
                // Revoked while it opened: the revoke waits for this task, which gives the store back.
                await settle(number, owned, log: log)
                return
            }
        } catch {
            logger.error("shard \(number): \(error)")
            await giveBack(shard, number, appending: appending, log: log)
            state.withLock { $0.ownership.openFailed(number) }
            return
        }
        // The restored store's offset is the truth: a transaction that applied input but never reached the
        // log is gone from it, so its input is read again. (The group's committed offsets are for lag
        // monitoring only; starting from them could skip exactly that input.)
        // A store that has read nothing starts at offset 0, not at the logical beginning: a logical offset
        // is looked up by the consumer, and the lookup answered after the resume below is dropped as
        // outdated and asked again only a second later, so a new shard's first input waited a second.
        // (Where retention has removed offset 0 the consumer resets to the earliest, as
        // `auto.offset.reset` says.)
        let next = offsets.workflows ?? 0
        // Retried a few times: a consumer that stays at the group's committed offset is still correct (the
        // group commits only what the shard log confirmed, so the store has it and skips it, and the paused
        // partition read nothing meanwhile), so this only spares re-reading.
        var pause = Duration.milliseconds(100)
        for _ in 0..<5 {
            do {
                try await consumer.seek(topic: configuration.topics.workflows, partition: Int32(number), offset: next)
                break
            } catch {
                if Task.isCancelled { return }
                logger.warning("shard \(number): seek to \(next) failed, retrying in \(pause): \(error)")
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
        // Revoked meanwhile: the revoke settles the shard once this task ends; its partition is being taken.
        if Task.isCancelled { return }
        do {
            try consumer.resume([TopicPartition(topic: configuration.topics.workflows, partition: Int32(number))])
        } catch {
            // Left paused, the shard would get no input: take the assignment again instead.
            logger.error("shard \(number): cannot resume its partition (\(error)); rejoining the group")
            do { try consumer.rejoin() } catch { logger.error("shard \(number): cannot rejoin the group: \(error)") }
            return
        }
        do {
            try await control.assign([TopicPartitionOffset(topic: configuration.topics.control, partition: Int32(number),
                                                           offset: offsets.control ?? TopicPartitionOffset.beginning)])
        } catch {
            logger.error("shard \(number): cannot assign its control partition: \(error)")
        }
    }

    /// Gives back a shard whose open stops before it ran (refused, failing, or revoked meanwhile): closes
    /// its store and stops its log appender and reader.
    private func giveBack(_ shard: Shard, _ number: Int, appending: Task<Void, Never>, log: ShardLogClient) async {
        await shard.close(drainTimeout: .zero)
        appending.cancel()
        await log.stopReading(shard: number)
    }

    /// The group's committed offset of a workflows partition, if any.
    private func groupProgress(of number: Int, consumer: KafkaConsumer) async -> Int64? {
        let partition = TopicPartition(topic: configuration.topics.workflows, partition: Int32(number))
        return try? await consumer.committed([partition], timeout: .seconds(10)).first?.offset
    }

    /// Restores a shard's store from its log (claiming the shard there), waiting while another owner on
    /// this host still holds the store, and retrying while the broker is away. Nil when cancelled
    /// (revoked) or when the store cannot be opened.
    private func restore(_ number: Int, follower: ShardLogFollower) async -> ShardLogFollower.Restored? {
        let deadline = ContinuousClock.now.advanced(by: configuration.shardOpenTimeout)
        var warned = false
        var pause = Duration.milliseconds(200)
        let dimensions = [("shard", String(number))]
        while !Task.isCancelled {
            let store: ShardRestore
            do {
                store = try ShardRestore(directory: configuration.dataDirectory, shard: number, logger: logger)
            } catch ShardError.locked {
                if ContinuousClock.now > deadline {
                    logger.error("shard \(number): store still locked by another owner after \(configuration.shardOpenTimeout); not running it")
                    return nil
                }
                if !warned {
                    logger.info("shard \(number): waiting for the previous owner to release the store")
                    warned = true
                }
                try? await Task.sleep(for: .milliseconds(200))
                continue
            } catch {
                logger.error("shard \(number): cannot open store: \(error)")
                return nil
            }
            do {
                state.withLock { $0.restoring[number] = (-1, -1) }
                let restored = try await follower.restore(store, owner: owner) { read, end in
                    self.state.withLock { $0.restoring[number] = (read, end) }
                }
                Counter(label: "shardflow_restore_records_total", dimensions: dimensions).increment(by: restored.recordsRead)
                Counter(label: "shardflow_restore_changes_total", dimensions: dimensions).increment(by: restored.changesApplied)
                Gauge(label: "shardflow_restore_duration_seconds", dimensions: dimensions).record(restored.duration.timeInterval)
                let kind = restored.discarded ? "discarded" : restored.snapshot != nil ? "snapshot"
                    : restored.changesApplied == 0 ? "current" : "tail"
                Counter(label: "shardflow_restores_total", dimensions: dimensions + [("store", kind)]).increment()
                logger.info("shard \(number): restored from its log in \(restored.duration) (\(restored.recordsRead) records read, \(restored.changesApplied) transactions applied\(restored.discarded ? ", local store discarded" : "")\(restored.snapshot != nil ? ", from a snapshot" : "")); writing epoch \(restored.epoch)")
                return restored
            } catch {
                store.close()
                await follower.client.stopReading(shard: number)
                if Task.isCancelled { return nil }
                logger.warning("shard \(number): restoring from its log failed, retrying in \(pause): \(error)")
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
        return nil
    }

    /// The shard's log follower stopped. Fenced (another worker claimed the shard) or diverged (a record
    /// of its own never reached the log): the shard must not publish or change anything more here, so it
    /// stops at once. Fenced, the group's revoke (which follows a newer claim) finds it closed; if none
    /// comes within 30 s, the claim was no owner's and the worker rejoins. Diverged, the worker leaves the
    /// group and joins again at once, so the shard is assigned anew and its store restored
    /// (through the same path as any assignment, with the consumer moved to the restored offsets).
    private func followingEnded(_ number: Int, _ ending: ShardLogFollower.Ending, shard: Shard,
                                publishing: Task<Void, Never>, consumer: KafkaConsumer) async {
        let reason: String
        switch ending {
        case .stopped:
            return
        case .fenced(let claim):
            reason = "claimed in its log by \(claim.owner)"
            logger.error("shard \(number): \(reason); this worker stops running it")
            Counter(label: "shardflow_shard_fenced_total", dimensions: [("shard", String(number)), ("reason", "claimed")]).increment()
        case .diverged(let diverged):
            reason = diverged
            logger.critical("shard \(number): \(reason); this worker stops running it, and restores it at its next assignment")
            Counter(label: "shardflow_shard_fenced_total", dimensions: [("shard", String(number)), ("reason", "diverged")]).increment()
        }
        // Stopped, not closed: the group still assigns it here, so `/readyz` says why nothing runs it until
        // the revoke. (Settling or opened anew, it is already in the hands of its revoke or its new open.)
        state.withLock { state in
            guard state.ownership.runningShard(number)?.shard === shard else { return }
            do { try state.ownership.stop(number, reason: reason) } catch { logger.error("\(error)") }
        }
        publishing.cancel()
        await shard.close(drainTimeout: .zero)
        if case .fenced = ending {
            // A claim by a worker the group gave the shard is followed by a revoke. One that is not (a
            // stray record in the log) must not leave the shard unrun: still ours after a while, rejoin.
            try? await Task.sleep(for: .seconds(30))
            guard state.withLock({ $0.ownership.assignedShard(number)?.shard === shard }) else { return }
            logger.warning("shard \(number): fenced by a claim but not revoked; rejoining the group to run it again")
        }
        do { try consumer.rejoin() } catch { logger.error("shard \(number): cannot rejoin the group: \(error)") }
    }

    private func revoke(_ partitions: [TopicPartition], control: KafkaPartitionConsumer, log: ShardLogClient) async {
        let numbers = partitions.filter { $0.topic == configuration.topics.workflows }.map { Int($0.partition) }
        logger.info("revoked shards \(numbers.sorted())")
        let actions = state.withLock { state in numbers.map { ($0, state.ownership.revoke($0)) } }
        // Opens still under way stop first (at once: their broker calls stop waiting), so none assigns a
        // control partition after it is unassigned here.
        await withTaskGroup(of: Void.self) { group in
            for case let task? in actions.map(\.1.openTask) {
                task.cancel()
                group.addTask { await task.value }
            }
        }
        do {
            try await control.unassign(numbers.map { TopicPartition(topic: configuration.topics.control, partition: Int32($0)) })
        } catch {
            logger.error("cannot unassign control partitions: \(error)")
        }
        await withTaskGroup(of: Void.self) { group in
            for (number, action) in actions {
                group.addTask { await self.apply(action, to: number, log: log) }
            }
        }
    }

    /// Carries out a revoke: cancels what is left of the shard's open and waits for it (to give the store
    /// back, or to finish positioning the consumers), then settles a running shard. The shard is closed
    /// afterwards.
    private func apply(_ action: ShardOwnerships<OwnedShard>.RevokeAction, to number: Int, log: ShardLogClient) async {
        switch action {
        case .settle(let owned, let opening):
            opening?.cancel()
            await opening?.value
            await settle(number, owned, log: log)
        case .cancelOpening(let task):
            task?.cancel()
            await task?.value
        case .none:
            return
        }
        state.withLock { state in
            do { try state.ownership.settled(number) } catch { logger.error("\(error)") }
        }
    }

    /// Stops claiming, lets in-flight steps finish and record (up to the drain timeout), publishes what the
    /// outbox holds (up to the flush timeout; the log follower still confirms what the appender sends),
    /// then stops writing and reading the log, closes the store and releases its lock.
    private func settle(_ number: Int, _ owned: OwnedShard, log: ShardLogClient) async {
        // Input still queued is dropped: the next owner reads it again from the store's offsets.
        owned.intake.close()
        await owned.ingesting.value
        await owned.shard.stop(drainTimeout: configuration.drainTimeout)
        owned.publishing.cancel()
        await owned.publishing.value
        let left = await owned.publisher.flush(until: ContinuousClock.now.advanced(by: configuration.flushTimeout))
        if left > 0 { logger.warning("shard \(number): \(left) outbox rows left for the next owner") }
        // The appender sends what is pending before it ends; the follower writes its checkpoint.
        owned.appending.cancel()
        await owned.appending.value
        owned.following.cancel()
        await log.stopReading(shard: number)
        await owned.following.value
        await owned.shard.close()
        logger.info("shard \(number) closed")
    }

    // MARK: - health and gauges

    private func probeBroker(admin: KafkaAdmin) async {
        while !Task.isCancelled {
            do {
                _ = try await admin.partitionCount(topic: configuration.topics.workflows)
                state.withLock { $0.brokerReachable = true; $0.brokerError = nil }
            } catch {
                state.withLock { $0.brokerReachable = false; $0.brokerError = "\(error)" }
            }
            try? await Task.sleep(for: .seconds(2))
        }
    }

    private func refreshGauges(consumer: KafkaConsumer) async {
        while !Task.isCancelled {
            let owned = state.withLock { $0.ownership.running }
            var snapshots: [Int: ShardSnapshot] = [:]
            for (number, entry) in owned {
                guard let stats = try? entry.shard.stats() else { continue }
                let dimensions = [("shard", String(number))]
                Gauge(label: "shardflow_queued_tasks", dimensions: dimensions).record(stats.queuedTasks)
                Gauge(label: "shardflow_running_steps", dimensions: dimensions).record(stats.runningTasks)
                Gauge(label: "shardflow_replay_queue_depth", dimensions: dimensions).record(stats.replayQueueDepth)
                Gauge(label: "shardflow_outbox_depth", dimensions: dimensions).record(stats.outboxDepth)
                Gauge(label: "shardflow_epoch", dimensions: dimensions).record(stats.epoch)
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                Gauge(label: "shardflow_outbox_oldest_age_seconds", dimensions: dimensions)
                    .record(Double(stats.oldestOutboxCreatedAt.map { max(0, now - $0) } ?? 0) / 1000)
                Gauge(label: "shardflow_quarantined_workflows", dimensions: dimensions).record(stats.quarantinedWorkflows)
                Gauge(label: "shardflow_parked_workflows", dimensions: dimensions).record(stats.parkedWorkflows)
                var lag: Int64?
                if let high = consumer.cachedHighWatermark(topic: configuration.topics.workflows, partition: Int32(number)) {
                    lag = max(0, high - (stats.nextWorkflowsOffset ?? 0))
                    Gauge(label: "shardflow_consumer_lag", dimensions: dimensions).record(lag ?? 0)
                }
                snapshots[number] = ShardSnapshot(
                    shard: number, epoch: stats.epoch, executorState: stats.executorState.rawValue,
                    queuedTasks: stats.queuedTasks, runningTasks: stats.runningTasks,
                    replayQueueDepth: stats.replayQueueDepth, outboxDepth: stats.outboxDepth,
                    oldestOutboxAgeSeconds: stats.oldestOutboxCreatedAt.map { Double(max(0, now - $0)) / 1000 },
                    consumerLag: lag, stuckWorkflows: (try? entry.shard.stuckCount()) ?? 0,
                    parkedWorkflows: stats.parkedWorkflows, quarantinedWorkflows: stats.quarantinedWorkflows,
                    timers: stats.timers, eventWaits: stats.eventWaits, workflowsByStatus: stats.workflowsByStatus,
                    takenAt: now)
            }
            state.withLock { $0.snapshots = snapshots }
            Gauge(label: "shardflow_owned_shards").record(owned.count)
            try? await Task.sleep(for: .seconds(2))
        }
    }
}

// MARK: - console

extension Worker {
    /// The latest snapshots of the owned shards, by shard number (at most 2 s old).
    public func shardSnapshots() -> [ShardSnapshot] {
        state.withLock { state in
            let running = state.ownership.running
            return state.snapshots.filter { running[$0.key] != nil }.values.sorted { $0.shard < $1.shard }
        }
    }

    /// The partition count of the workflows topic, once the worker has read it.
    public var workflowsPartitionCount: Int? { partitionCount.withLock { $0 } }

    /// A workflow by id: its shard (murmur2 of the id), and its detail when this worker owns that shard.
    public func lookUpWorkflow(_ workflowId: String) throws -> ConsoleWorkflow? {
        guard let count = workflowsPartitionCount, count > 0 else { return nil }
        let number = ShardRouting.partition(ofWorkflowId: workflowId, partitionCount: count)
        guard let owned = state.withLock({ $0.ownership.runningShard(number) }) else {
            return ConsoleWorkflow(workflowId: workflowId, shard: number, ownedHere: false, detail: nil)
        }
        return ConsoleWorkflow(workflowId: workflowId, shard: number, ownedHere: true,
                               detail: try owned.shard.workflowDetail(workflowId))
    }

    /// Stuck, parked, recently failed workflows and retrying steps of every owned shard.
    public func shardLists(limit: Int = 20) -> [ShardLists] {
        let owned = state.withLock { $0.ownership.running }
        return owned.keys.sorted().compactMap { try? owned[$0]?.shard.lists(limit: limit) }
    }
}
