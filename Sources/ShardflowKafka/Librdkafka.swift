import Crdkafka

/// Facts about the librdkafka library loaded at run time.
public enum Librdkafka {
    /// The loaded version as librdkafka encodes it: `0xMMmmrrxx` (major, minor, revision, pre-release).
    public static var versionNumber: Int { Int(rd_kafka_version()) }

    /// The loaded version as text, e.g. `2.16.0`.
    public static var version: String { String(cString: rd_kafka_version_str()) }

    /// The oldest librdkafka that can talk to current brokers: 2.0.x misreads the tagged fields of
    /// the ApiVersions answer and fails every connection with "Read underflow".
    public static let minimumSupportedVersionNumber = 0x0201_0000

    /// Throws `UnsupportedLibrdkafkaError` when the loaded librdkafka is older than 2.1.
    public static func requireSupportedVersion() throws {
        try requireSupportedVersion(loaded: versionNumber, text: version)
    }

    static func requireSupportedVersion(loaded: Int, text: String) throws {
        if loaded < minimumSupportedVersionNumber {
            throw UnsupportedLibrdkafkaError(loadedVersion: text)
        }
    }
}

/// The loaded librdkafka is too old to talk to current Kafka brokers.
public struct UnsupportedLibrdkafkaError: Error, CustomStringConvertible, Sendable {
    public let loadedVersion: String

    public var description: String {
        "librdkafka \(loadedVersion) is loaded, but Shardflow needs librdkafka 2.1 or newer: older versions "
            + "cannot parse the ApiVersions answer of current brokers and fail every connection with "
            + "\"ApiVersionRequest failed: Local: Read underflow\". Fix: run scripts/setup.sh and "
            + "`source .tools/env.sh`, or put a librdkafka >= 2.1 (librdkafka.so.1) on LD_LIBRARY_PATH."
    }
}
