import Foundation
import ShardflowSupport
import Synchronization

/// Limits of an organisation's use of the Messages API, per model and minute, as the API enforces them
/// (requests, input tokens, output tokens). Zero means no limit. A worker is given its share.
public struct LLMRateLimits: Sendable, Equatable {
    public var requestsPerMinute: Int
    public var inputTokensPerMinute: Int
    public var outputTokensPerMinute: Int

    public init(requestsPerMinute: Int = 0, inputTokensPerMinute: Int = 0, outputTokensPerMinute: Int = 0) {
        self.requestsPerMinute = max(0, requestsPerMinute)
        self.inputTokensPerMinute = max(0, inputTokensPerMinute)
        self.outputTokensPerMinute = max(0, outputTokensPerMinute)
    }

    public var isUnlimited: Bool { requestsPerMinute == 0 && inputTokensPerMinute == 0 && outputTokensPerMinute == 0 }

    /// Input tokens a request will be counted for: about 4 bytes of text a token, as the API estimates
    /// before it has tokenised.
    public static func estimatedInputTokens(_ request: LLMRequest) -> Int {
        let bytes = (request.system?.utf8.count ?? 0) + request.messages.reduce(0) { $0 + $1.content.utf8.count }
        return max(1, bytes / 4)
    }
}

/// A client-side limiter shared by every call of one client (so by all the shards of a worker): each call
/// waits, before it opens an HTTP request, until its model's buckets hold one request, its estimated input
/// tokens and its `max_tokens` of output. Waiters go in arrival order (the executor claims steps FIFO, so the
/// earliest-created workflow's call goes first), and a waiting call holds no HTTP connection.
///
/// The buckets refill continuously at the per-minute rate and hold at most half a second of it (the API's
/// own token bucket allows about a second without 429s; the rest is margin for calls that arrive bunched). The limiter also follows the API: its
/// `anthropic-ratelimit-*-remaining` headers lower what a bucket holds, and a 429's `retry-after` (or an
/// exhausted limit's `-reset` time) stops the model's calls until then.
public final class LLMRateLimiter: Sendable {
    public let limits: LLMRateLimits

    private struct Bucket {
        var requests: Double
        var inputTokens: Double
        var outputTokens: Double
        var refilledAt: ContinuousClock.Instant
        var pausedUntil: ContinuousClock.Instant?
    }

    private struct Waiter {
        let id: UInt64
        let priority: LLMCallPriority?
        let input: Double
        let output: Double
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct ModelState {
        var bucket: Bucket
        var waiters: [Waiter] = []
        var pumping = false
    }

    private struct State {
        var models: [String: ModelState] = [:]
        var nextId: UInt64 = 0
    }

    private let state = Mutex(State())

    public init(limits: LLMRateLimits) {
        self.limits = limits
    }

    /// Half a second of each limit: the API's own bucket holds about a second, and calls released together
    /// can reach it bunched (connection set-up, a loaded host), so the client keeps a margin.
    private var capacity: (requests: Double, input: Double, output: Double) {
        func second(_ perMinute: Int) -> Double { perMinute == 0 ? .infinity : max(1, Double(perMinute) / 120) }
        return (second(limits.requestsPerMinute), second(limits.inputTokensPerMinute), second(limits.outputTokensPerMinute))
    }

    private func freshBucket(_ now: ContinuousClock.Instant) -> Bucket {
        let capacity = self.capacity
        return Bucket(requests: capacity.requests, inputTokens: capacity.input, outputTokens: capacity.output, refilledAt: now)
    }

    private func refill(_ bucket: inout Bucket, _ now: ContinuousClock.Instant) {
        let elapsed = max(0, (now - bucket.refilledAt).timeInterval)
        let capacity = self.capacity
        func add(_ value: Double, _ perMinute: Int, _ cap: Double) -> Double {
            perMinute == 0 ? .infinity : min(cap, value + elapsed * Double(perMinute) / 60)
        }
        bucket.requests = add(bucket.requests, limits.requestsPerMinute, capacity.requests)
        bucket.inputTokens = add(bucket.inputTokens, limits.inputTokensPerMinute, capacity.input)
        bucket.outputTokens = add(bucket.outputTokens, limits.outputTokensPerMinute, capacity.output)
        bucket.refilledAt = now
    }

    /// How long until the bucket holds what the waiter needs (0: now). A need above the bucket's capacity
    /// (one second of the limit) waits for a full bucket, then goes.
    private func wait(for input: Double, _ output: Double, in bucket: Bucket, now: ContinuousClock.Instant) -> Double {
        if let paused = bucket.pausedUntil, paused > now { return (paused - now).timeInterval }
        let capacity = self.capacity
        func seconds(_ have: Double, _ need: Double, _ perMinute: Int, _ cap: Double) -> Double {
            guard perMinute > 0 else { return 0 }
            let target = min(need, cap)
            return have >= target ? 0 : (target - have) / (Double(perMinute) / 60)
        }
        return max(seconds(bucket.requests, 1, limits.requestsPerMinute, capacity.requests),
                   seconds(bucket.inputTokens, input, limits.inputTokensPerMinute, capacity.input),
                   seconds(bucket.outputTokens, output, limits.outputTokensPerMinute, capacity.output))
    }

    private func take(_ input: Double, _ output: Double, from bucket: inout Bucket) {
        bucket.requests -= 1
        bucket.inputTokens -= input
        bucket.outputTokens -= output
    }

    /// Waits for the model's turn, then counts the call against its buckets. Waiters go by `priority` (the
    /// workflow FIFO order: calls of steps claimed together reach the limiter in any order), then arrival.
    public func acquire(model: String, inputTokens: Int, outputTokens: Int, priority: LLMCallPriority? = nil) async throws {
        guard !limits.isUnlimited else { return }
        try await enqueue(model: model, input: Double(inputTokens), output: Double(outputTokens), priority: priority)
    }

    private func enqueue(model: String, input: Double, output: Double, priority: LLMCallPriority?) async throws {
        let id: UInt64 = state.withLock { state in
            state.nextId += 1
            return state.nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = ContinuousClock.now
                let startPump: Bool = state.withLock { state in
                    var entry = state.models[model] ?? ModelState(bucket: freshBucket(now))
                    refill(&entry.bucket, now)
                    // Straight through when nobody waits and the bucket holds enough.
                    if entry.waiters.isEmpty && wait(for: input, output, in: entry.bucket, now: now) == 0 {
                        take(input, output, from: &entry.bucket)
                        state.models[model] = entry
                        continuation.resume()
                        return false
                    }
                    let waiter = Waiter(id: id, priority: priority, input: input, output: output, continuation: continuation)
                    // Behind every waiter that goes first: a smaller priority, or none and earlier.
                    let position = entry.waiters.lastIndex { other in
                        switch (other.priority, priority) {
                        case (let a?, let b?): return a <= b
                        case (_?, nil), (nil, nil): return true
                        case (nil, _?): return false
                        }
                    }.map { $0 + 1 } ?? 0
                    entry.waiters.insert(waiter, at: position)
                    let start = !entry.pumping
                    entry.pumping = true
                    state.models[model] = entry
                    return start
                }
                if startPump { Task { await self.pump(model) } }
            }
        } onCancel: {
            let removed: Waiter? = state.withLock { state in
                guard var entry = state.models[model], let index = entry.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                let waiter = entry.waiters.remove(at: index)
                state.models[model] = entry
                return waiter
            }
            removed?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Lets the model's waiters go in order as the bucket refills; ends when none is left.
    private func pump(_ model: String) async {
        while true {
            let now = ContinuousClock.now
            var released: [Waiter] = []
            let delay: Double? = state.withLock { state in
                guard var entry = state.models[model] else { return nil }
                refill(&entry.bucket, now)
                while let head = entry.waiters.first, wait(for: head.input, head.output, in: entry.bucket, now: now) == 0 {
                    take(head.input, head.output, from: &entry.bucket)
                    released.append(entry.waiters.removeFirst())
                }
                defer { state.models[model] = entry }
                guard let head = entry.waiters.first else {
                    entry.pumping = false
                    return nil
                }
                return wait(for: head.input, head.output, in: entry.bucket, now: now)
            }
            for waiter in released { waiter.continuation.resume() }
            guard let delay else { return }
            try? await Task.sleep(for: .milliseconds(max(1, Int((delay * 1000).rounded(.up)))))
        }
    }

    /// The calls waiting for a model, in the order they will go (their priorities; nil: made outside a step).
    public func waiting(model: String) -> [LLMCallPriority?] {
        state.withLock { $0.models[model]?.waiters.map(\.priority) ?? [] }
    }

    /// Gives back output tokens reserved (`max_tokens`) but not used.
    public func settle(model: String, reservedOutputTokens: Int, usedOutputTokens: Int) {
        guard limits.outputTokensPerMinute > 0, reservedOutputTokens > usedOutputTokens else { return }
        state.withLock { state in
            state.models[model]?.bucket.outputTokens += Double(reservedOutputTokens - usedOutputTokens)
        }
    }

    /// Follows what the API said: remaining quota lowers the buckets, and a `retry-after` (or a limit at 0
    /// until its reset) stops the model's calls until then.
    public func observe(model: String, headers: LLMRateLimitHeaders) {
        guard !limits.isUnlimited else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            var entry = state.models[model] ?? ModelState(bucket: freshBucket(now))
            refill(&entry.bucket, now)
            if let remaining = headers.requestsRemaining { entry.bucket.requests = min(entry.bucket.requests, Double(remaining)) }
            if let remaining = headers.inputTokensRemaining { entry.bucket.inputTokens = min(entry.bucket.inputTokens, Double(remaining)) }
            if let remaining = headers.outputTokensRemaining { entry.bucket.outputTokens = min(entry.bucket.outputTokens, Double(remaining)) }
            var pause = headers.retryAfterSeconds
            if headers.requestsRemaining == 0, let reset = headers.requestsResetSeconds { pause = max(pause ?? 0, reset) }
            if let pause, pause > 0 {
                let until = now.advanced(by: .milliseconds(Int64(pause * 1000)))
                entry.bucket.pausedUntil = max(entry.bucket.pausedUntil ?? until, until)
            }
            state.models[model] = entry
        }
    }
}

/// The rate-limit headers of a Messages API response.
public struct LLMRateLimitHeaders: Sendable, Equatable {
    public var requestsRemaining: Int?
    public var inputTokensRemaining: Int?
    public var outputTokensRemaining: Int?
    /// Seconds until the request limit is replenished (from `anthropic-ratelimit-requests-reset`, RFC 3339).
    public var requestsResetSeconds: Double?
    public var retryAfterSeconds: Double?

    public init(requestsRemaining: Int? = nil, inputTokensRemaining: Int? = nil, outputTokensRemaining: Int? = nil,
                requestsResetSeconds: Double? = nil, retryAfterSeconds: Double? = nil) {
        self.requestsRemaining = requestsRemaining
        self.inputTokensRemaining = inputTokensRemaining
        self.outputTokensRemaining = outputTokensRemaining
        self.requestsResetSeconds = requestsResetSeconds
        self.retryAfterSeconds = retryAfterSeconds
    }

    /// Reads them through `header(name)`; `now` is the wall-clock time the reset is measured from.
    public static func parse(_ header: (String) -> String?, now: Date = Date()) -> LLMRateLimitHeaders {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        func date(_ text: String) -> Date? { formatter.date(from: text) ?? plain.date(from: text) }
        return LLMRateLimitHeaders(
            requestsRemaining: header("anthropic-ratelimit-requests-remaining").flatMap { Int($0) },
            inputTokensRemaining: header("anthropic-ratelimit-input-tokens-remaining").flatMap { Int($0) },
            outputTokensRemaining: header("anthropic-ratelimit-output-tokens-remaining").flatMap { Int($0) },
            requestsResetSeconds: header("anthropic-ratelimit-requests-reset").flatMap(date).map { max(0, $0.timeIntervalSince(now)) },
            retryAfterSeconds: header("retry-after").flatMap { Double($0) })
    }
}
