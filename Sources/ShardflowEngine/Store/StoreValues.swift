import GRDBSQLite

/// A column that holds one of a fixed set of words. It decodes through its enum and throws on a
/// word it does not know, instead of falling back to some default (a row written by a newer version,
/// or damaged, must not be read as something it is not).
protocol StoreEnum: RawRepresentable, StoreBindable where RawValue == String {
    /// The column, as `table.column`, for the error.
    static var storeColumn: String { get }
}

extension StoreEnum {
    func bind(to statement: OpaquePointer, at index: Int32) -> Int32 { rawValue.bind(to: statement, at: index) }
    func appendRedo(to bytes: inout [UInt8]) { rawValue.appendRedo(to: &bytes) }
}

/// A stored value the engine does not know.
struct StoreDecodingError: Error, Sendable, Equatable, CustomStringConvertible {
    let column: String
    let value: String

    var description: String { "unknown value \"\(value.prefix(utf8Bytes: 100))\" in \(column)" }
}

extension StoreRow {
    /// Column `index` decoded as `E`; throws `StoreDecodingError` on a value `E` does not have.
    func decode<E: StoreEnum>(_ index: Int32, as type: E.Type = E.self) throws -> E {
        let text: String = self[index]
        guard let value = E(rawValue: text) else { throw StoreDecodingError(column: E.storeColumn, value: text) }
        return value
    }
}

/// `journal.taskState`: the task of a step's pending entry (NULL when it has none).
enum TaskState: String, StoreEnum, CaseIterable, Sendable {
    case queued, running
    /// Set aside: its workflow is parked (see `Shard+Parking`).
    case parked
    static let storeColumn = "journal.taskState"
}

/// `workflows.status`.
enum WorkflowStatus: String, StoreEnum, CaseIterable, Sendable {
    case running, succeeded, failed, canceled
    static let storeColumn = "workflows.status"

    init(_ completion: CompletionStatus) {
        switch completion {
        case .succeeded: self = .succeeded
        case .failed: self = .failed
        case .canceled: self = .canceled
        }
    }
}

extension JournalEntry.Kind: StoreEnum {
    static let storeColumn = "journal.kind"
}

extension JournalEntry.Status: StoreEnum {
    static let storeColumn = "journal.status"
}

extension ReplayTrigger: StoreEnum {
    static let storeColumn = "replay_queue.trigger"
}

extension OutboxTopic: StoreEnum {
    static let storeColumn = "outbox.topic"
}

extension InboundMessage.Stream: StoreEnum {
    static let storeColumn = "consumed_offsets.stream"
}
