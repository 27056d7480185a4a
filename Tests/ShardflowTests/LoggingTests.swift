import Foundation
import Logging
@testable import Shardflow
import Synchronization
import Testing

@Suite("Structured logs")
struct LoggingTests {
    final class Lines: Sendable {
        let lines = Mutex<[Data]>([])
    }

    @Test("JSON lines carry level, logger, message and metadata; secrets are redacted")
    func jsonLinesRedactSecrets() throws {
        let sink = Lines()
        var handler = JSONLogHandler(label: "shardflow.test", level: .info) { line in
            sink.lines.withLock { $0.append(line) }
        }
        handler[metadataKey: "shard"] = "7"
        let logger = Logger(label: "shardflow.test") { _ in handler }
        logger.info("opened", metadata: ["sasl.password": "hunter2", "x-api-key": "sk-ant-123", "workflowId": "order-42"])
        logger.debug("below the level")
        let lines = sink.lines.withLock { $0 }
        #expect(lines.count == 1)
        let first = try #require(lines.first)
        let object = try #require(try JSONSerialization.jsonObject(with: first) as? [String: Any])
        #expect(object["level"] as? String == "info")
        #expect(object["logger"] as? String == "shardflow.test")
        #expect(object["msg"] as? String == "opened")
        #expect(object["shard"] as? String == "7")
        #expect(object["workflowId"] as? String == "order-42")
        #expect(object["sasl.password"] as? String == "<redacted>")
        #expect(object["x-api-key"] as? String == "<redacted>")
        let text = String(decoding: first, as: UTF8.self)
        #expect(!text.contains("hunter2") && !text.contains("sk-ant-123"))
    }
}
