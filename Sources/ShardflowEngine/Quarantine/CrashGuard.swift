import CShardflowCrashGuard
import Foundation

/// What workflow code a thread runs: a workflow body, or one of its steps.
struct CrashSubject: Sendable, Equatable {
    enum Kind: String, Sendable { case body, step }
    var kind: Kind
    var workflowId: String
    /// The step's id (the journal's seq); nil for a body.
    var stepId: Int?

    /// `kind\tworkflowId\tstepId\n`: workflowIds are `[A-Za-z0-9._:-]`, so tabs cannot occur in them.
    var record: String { "\(kind.rawValue)\t\(workflowId)\t\(stepId.map(String.init) ?? "-")\n" }

    init(kind: Kind, workflowId: String, stepId: Int?) {
        self.kind = kind
        self.workflowId = workflowId
        self.stepId = stepId
    }

    init?(record: Substring) {
        let fields = record.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 3, let kind = Kind(rawValue: String(fields[0])), !fields[1].isEmpty else { return nil }
        self.kind = kind
        workflowId = String(fields[1])
        stepId = fields[2] == "-" ? nil : Int(fields[2])
        if kind == .step && stepId == nil { return nil }
    }
}

/// What the crash guard recorded when the process died running workflow code.
struct CrashRecord: Sendable, Equatable {
    var signal: Int32
    var subject: CrashSubject

    var signalName: String {
        switch signal {
        case SIGILL: "SIGILL"
        case SIGTRAP: "SIGTRAP"
        case SIGABRT: "SIGABRT"
        case SIGFPE: "SIGFPE"
        case SIGSEGV: "SIGSEGV"
        case SIGBUS: "SIGBUS"
        default: "signal \(signal)"
        }
    }

    /// Parses `signal=<n>\n<subject record>`.
    init?(bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        let lines = text.split(separator: "\n", maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count >= 2, lines[0].hasPrefix("signal="), let number = Int32(lines[0].dropFirst(7)),
              let subject = CrashSubject(record: lines[1])
        else { return nil }
        signal = number
        self.subject = subject
    }

    init(signal: Int32, subject: CrashSubject) {
        self.signal = signal
        self.subject = subject
    }
}

/// A preformatted crash site for the C handler. Immutable once made, and freed only when the last
/// holder (a running body's pump, a step's task) lets go, so the handler never reads freed memory; it
/// keeps its file (whose path it points at) alive as long.
final class CrashSite: Sendable {
    // Written once in `init`, before the site is shared; after that only read (by the owning
    // code's threads and the signal handler), so no access races.
    nonisolated(unsafe) let pointer: UnsafeMutablePointer<shardflow_crash_site>
    private let file: CrashRecordFile

    init(file: CrashRecordFile, subject: CrashSubject) {
        self.file = file
        pointer = .allocate(capacity: 1)
        let record = subject.record
        record.utf8CString.withUnsafeBufferPointer { bytes in
            shardflow_crash_site_set(pointer, file.cPath, bytes.baseAddress, bytes.count - 1)
        }
    }

    deinit { pointer.deallocate() }

    /// Runs `body` with this site as the thread's current one (synchronous code: a body's pump).
    @inline(__always)
    func attributing<T>(_ body: () throws -> T) rethrows -> T {
        let previous = shardflow_crash_guard_enter(pointer)
        defer { shardflow_crash_guard_leave(previous) }
        return try body()
    }

    /// Runs `body` with this site as the current task's, on whatever threads it resumes (a step).
    func attributing<T>(_ body: () async throws -> T) async rethrows -> T {
        let slot = shardflow_crash_guard_register_task(pointer)
        defer { shardflow_crash_guard_unregister_task(slot) }
        return try await body()
    }
}

/// `shard-NNN.crash` beside a shard's store: empty while nothing crashed; after the process died in
/// workflow code it holds what was running (see `CrashRecord`).
final class CrashRecordFile: Sendable {
    let path: String
    // The path as a C string for the signal handler: made once, freed in deinit (after every site that
    // points at it, since sites hold this object).
    nonisolated(unsafe) let cPath: UnsafeMutablePointer<CChar>

    /// Installs the process's crash guard (once) and names the file.
    init(path: String) {
        shardflow_crash_guard_install()
        self.path = path
        cPath = strdup(path)
    }

    deinit { free(cPath) }

    /// The record left by a crash, if any, and empties the file.
    func take() -> (record: CrashRecord?, unreadable: Bool) {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return (nil, false) }
        let record = CrashRecord(bytes: Array(data))
        _ = truncate(path, 0)
        return (record, record == nil)
    }

    func site(_ subject: CrashSubject) -> CrashSite { CrashSite(file: self, subject: subject) }
}
