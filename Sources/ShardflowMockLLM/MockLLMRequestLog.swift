import Foundation
import ShardflowLLM
import Synchronization

/// The mock's access log, for the benchmark: one line per answered request that named its step
/// (`shardflow-step`), as `workflowId,stepId,attempt,httpTry,status,arrivedAtMs,answeredAtMs` (Unix
/// milliseconds). With the stores' times of the same steps it splits a step's time into the worker's part
/// before the call, the call, and the worker's part after it (`BenchStepSplit`). Lines are buffered and
/// written in blocks of 64 KiB and at stop; a mock that is killed loses its last block.
public final class MockLLMRequestLog: Sendable {
    private struct State {
        var file: FileHandle?
        var pending: [UInt8] = []
    }

    private let state: Mutex<State>

    init(path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let file = FileHandle(forWritingAtPath: path) else {
            throw MockLLMConfigurationError("cannot create the request log \(path)")
        }
        state = Mutex(State(file: file))
    }

    func record(_ step: (identity: LLMStepIdentity, httpTry: Int), status: Int, arrivedAt: Date, answeredAt: Date) {
        let line = "\(step.identity.workflowId),\(step.identity.stepId),\(step.identity.attempt),\(step.httpTry),\(status),"
            + "\(Self.milliseconds(arrivedAt)),\(Self.milliseconds(answeredAt))\n"
        state.withLock { state in
            state.pending.append(contentsOf: line.utf8)
            if state.pending.count >= 64 << 10 { Self.write(&state) }
        }
    }

    /// Writes what is buffered and closes the file; later lines are dropped.
    func close() {
        state.withLock { state in
            Self.write(&state)
            try? state.file?.close()
            state.file = nil
        }
    }

    private static func write(_ state: inout State) {
        guard !state.pending.isEmpty else { return }
        try? state.file?.write(contentsOf: state.pending)
        state.pending.removeAll(keepingCapacity: true)
    }

    private static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }

    /// One line of the log.
    public struct Entry: Sendable, Equatable {
        public var workflowId: String
        public var stepId: Int
        public var attempt: Int
        public var httpTry: Int
        public var status: Int
        public var arrivedAtMs: Int64
        public var answeredAtMs: Int64

        public init(workflowId: String, stepId: Int, attempt: Int, httpTry: Int, status: Int, arrivedAtMs: Int64, answeredAtMs: Int64) {
            self.workflowId = workflowId
            self.stepId = stepId
            self.attempt = attempt
            self.httpTry = httpTry
            self.status = status
            self.arrivedAtMs = arrivedAtMs
            self.answeredAtMs = answeredAtMs
        }
    }
}

extension MockLLMRequestLog.Entry {
    /// Parses the log's text; lines that are not entries (a torn last line) are skipped.
    public static func parse(_ text: String) -> [Self] {
        text.split(separator: "\n").compactMap { line in
            // The workflow id may hold commas: the six numbers are the last fields.
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            guard fields.count >= 7 else { return nil }
            let numbers = fields.suffix(6).compactMap { Int64($0) }
            guard numbers.count == 6 else { return nil }
            return Self(workflowId: fields.dropLast(6).joined(separator: ","), stepId: Int(numbers[0]), attempt: Int(numbers[1]),
                        httpTry: Int(numbers[2]), status: Int(numbers[3]), arrivedAtMs: numbers[4], answeredAtMs: numbers[5])
        }
    }
}
