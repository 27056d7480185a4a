import Foundation
import Logging

/// A swift-log handler writing one JSON object per line to standard error, for log shippers.
///
/// Metadata whose key names a secret (password, api key, token, ...) is written as `"<redacted>"`, so a
/// misplaced `logger[metadataKey: "sasl.password"]` never leaks it.
public struct JSONLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    private let label: String

    public init(label: String, level: Logger.Level = .info) {
        self.label = label
        self.logLevel = level
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
        FileHandle.standardError.write(line)
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

/// Which configuration keys and metadata keys hold secrets.
public enum SecretRedaction {
    public static let placeholder = "<redacted>"

    public static func isSecret(_ key: String) -> Bool {
        let k = key.lowercased()
        return ["password", "secret", "api-key", "api_key", "apikey", "token", "credential", "private.key"]
            .contains { k.contains($0) }
    }

    /// A copy of librdkafka-style properties safe to print.
    public static func redacted(_ properties: [String: String]) -> [String: String] {
        var out = properties
        for key in properties.keys where isSecret(key) { out[key] = placeholder }
        return out
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
