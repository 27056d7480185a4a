import Foundation
import Logging
import ShardflowKafka

/// A swift-log handler writing one JSON object per line to standard error, for log shippers.
///
/// Metadata whose key names a secret (password, api key, token, ...) is written as `"<redacted>"`, so a
/// misplaced `logger[metadataKey: "sasl.password"]` never leaks it.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let write: @Sendable (Data) -> Void

    /// `write` receives each line (standard error by default).
    public init(label: String, level: Logger.Level = .info,
                write: @escaping @Sendable (Data) -> Void = { FileHandle.standardError.write($0) }) {
        self.label = label
        self.logLevel = level
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var object: [String: Any] = [
            "ts": Self.timestamp(),
            "level": event.level.rawValue,
            "logger": label,
            "msg": event.message.description,
        ]
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        for (key, value) in merged {
            object[key] = SecretRedaction.isSecret(key) ? SecretRedaction.placeholder : Self.plain(value)
        }
        if event.level >= .error { object["source"] = "\(event.file):\(event.line)" }
        guard var line = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        line.append(0x0A)
        write(line)
    }

    private static func plain(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): a.map(plain)
        case .dictionary(let d): d.mapValues(plain)
        }
    }

    private static func timestamp() -> String {
        Date().formatted(.iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted))
    }
}

/// Which log metadata keys hold secrets: Kafka's secret properties, and API keys.
enum SecretRedaction {
    static let placeholder = "<redacted>"

    static func isSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return KafkaConfiguration.isSecret(lower) || ["api-key", "api_key", "apikey", "authorization"].contains { lower.contains($0) }
    }
}

/// Log output format chosen on the command line.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json

    /// Bootstraps swift-log once for the process.
    public func bootstrap(level: Logger.Level) {
        switch self {
        case .text:
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case .json:
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label, level: level) }
        }
    }
}
