import Crdkafka

/// The settings of a Kafka client: the brokers to contact and any librdkafka property
/// (`security.protocol`, `sasl.*`, `ssl.*`, `message.timeout.ms`, …) passed through unchanged.
public struct KafkaConfiguration: Sendable, CustomStringConvertible {
    /// Comma-separated `host:port` list (librdkafka's `bootstrap.servers`).
    public var bootstrapServers: String
    /// librdkafka properties; they override the defaults each client sets.
    public var properties: [String: String]

    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// Returns a copy with `key` set to `value`.
    public func setting(_ key: String, _ value: String) -> KafkaConfiguration {
        var copy = self
        copy.properties[key] = value
        return copy
    }

    /// Adds properties written as `key=value` (the command line's `-X key=value`).
    /// Throws `KafkaError` for an entry without `=` or with an empty key.
    public mutating func add(assignments: [String]) throws {
        for assignment in assignments {
            guard let equals = assignment.firstIndex(of: "=") else {
                throw KafkaError.invalidArgument("expected key=value, got \"\(Self.redactedAssignment(assignment))\"")
            }
            let key = String(assignment[..<equals]).trimmingSpaces()
            guard !key.isEmpty else {
                throw KafkaError.invalidArgument("expected key=value with a non-empty key")
            }
            properties[key] = String(assignment[assignment.index(after: equals)...])
        }
    }

    /// Whether a property holds a secret that must never be logged or shown in an error.
    public static func isSecret(_ key: String) -> Bool {
        let lower = key.lowercased()
        return ["password", "secret", "jaas", "ssl.key.pem", "ssl_key", "ssl.keystore", "token", "credentials"]
            .contains { lower.contains($0) }
    }

    /// The properties with secret values replaced by `***`.
    public var redactedProperties: [String: String] {
        var copy = properties
        for key in copy.keys where Self.isSecret(key) { copy[key] = "***" }
        return copy
    }

    public var description: String {
        let props = redactedProperties.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        return "KafkaConfiguration(bootstrapServers: \(bootstrapServers), properties: [\(props.joined(separator: ", "))])"
    }

    /// A `KafkaError` message never repeats a secret value, even one librdkafka echoed back.
    func redact(_ text: String) -> String {
        var result = text
        for (key, value) in properties where Self.isSecret(key) && !value.isEmpty {
            result = result.replacingAll(value, with: "***")
        }
        return result
    }

    private static func redactedAssignment(_ text: String) -> String {
        isSecret(text) ? "***" : text
    }

    /// Builds an `rd_kafka_conf_t` from the defaults, then `bootstrapServers`, then `properties`.
    /// The caller owns the result (hand it to `rd_kafka_new` or destroy it).
    /// Consumer-only properties that a shared `-X` list may carry; a producer or admin handle skips them
    /// instead of warning about each.
    static let consumerOnlyProperties: Set<String> = [
        "session.timeout.ms", "heartbeat.interval.ms", "max.poll.interval.ms", "auto.offset.reset",
        "enable.auto.commit", "auto.commit.interval.ms", "partition.assignment.strategy", "group.instance.id",
        "group.protocol", "fetch.min.bytes", "fetch.wait.max.ms", "fetch.max.bytes", "isolation.level",
    ]

    func makeNativeConfiguration(defaults: [String: String], forConsumer: Bool = true) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var merged = defaults
        merged["bootstrap.servers"] = bootstrapServers
        for (key, value) in properties where forConsumer || !Self.consumerOnlyProperties.contains(key) {
            merged[key] = value
        }
        var errstr = [CChar](repeating: 0, count: 512)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            if result != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                let detail = redact(string(fromCBuffer: errstr))
                throw KafkaError.invalidArgument("invalid Kafka property \(key): \(detail)")
            }
        }
        return conf
    }
}

extension String {
    func trimmingSpaces() -> String {
        var slice = Substring(self)
        while slice.first?.isWhitespace == true { slice.removeFirst() }
        while slice.last?.isWhitespace == true { slice.removeLast() }
        return String(slice)
    }

    func replacingAll(_ target: String, with replacement: String) -> String {
        let needle = Array(target.utf8)
        let haystack = Array(utf8)
        guard !needle.isEmpty, haystack.count >= needle.count else { return self }
        var result: [UInt8] = []
        var index = 0
        while index < haystack.count {
            if index + needle.count <= haystack.count && haystack[index..<index + needle.count].elementsEqual(needle) {
                result += replacement.utf8
                index += needle.count
            } else {
                result.append(haystack[index])
                index += 1
            }
        }
        return String(decoding: result, as: UTF8.self)
    }
}

/// The text of a NUL-terminated C buffer librdkafka wrote an error into.
func string(fromCBuffer buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
