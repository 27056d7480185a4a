import Foundation
import Testing

// compose/ cannot be started on the project's machines (no Docker engine), so its structure is
// checked by scripts/validate-compose.sh; these tests run it on the real file and on broken copies,
// so a check that stopped working would show here too.

@Suite("Compose file")
struct ComposeFileTests {
    static let root = ContractSchemas.repositoryRoot()

    struct Run {
        var status: Int32
        var output: String
    }

    static func validate(_ composeFile: URL? = nil) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var arguments = ["bash", root.appendingPathComponent("scripts/validate-compose.sh").path]
        if let composeFile { arguments.append(composeFile.path) }
        process.arguments = arguments
        process.currentDirectoryURL = root
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        // Read before waiting, so a full pipe cannot block the script.
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Run(status: process.terminationStatus, output: String(decoding: data, as: UTF8.self))
    }

    @Test("compose/docker-compose.yml passes scripts/validate-compose.sh")
    func composeFileIsValid() throws {
        let run = try Self.validate()
        #expect(run.status == 0, "\(run.output)")
        #expect(run.output.contains("structure ok"))
    }

    struct Breakage: CustomTestStringConvertible, Sendable {
        var why: String
        var file: String
        var find: String
        var replace: String
        var expectedError: String
        var testDescription: String { why }
    }

    static let breakages: [Breakage] = [
        Breakage(why: "topics with 10 partitions", file: "docker-compose.yml",
                 find: #""--partitions", "100""#, replace: #""--partitions", "10""#,
                 expectedError: "--partitions must be 100"),
        Breakage(why: "workers pointed at another LLM", file: "docker-compose.yml",
                 find: "SHARDFLOW_LLM_BASE_URL: http://mock-llm:8080", replace: "SHARDFLOW_LLM_BASE_URL: http://localhost:8080",
                 expectedError: "SHARDFLOW_LLM_BASE_URL must be http://mock-llm:8080"),
        Breakage(why: "topic auto-creation on", file: "docker-compose.yml",
                 find: #"KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false""#, replace: #"KAFKA_AUTO_CREATE_TOPICS_ENABLE: "true""#,
                 expectedError: "KAFKA_AUTO_CREATE_TOPICS_ENABLE must be false"),
        Breakage(why: "two workers on one data volume", file: "docker-compose.yml",
                 find: "      - worker-2-data:/data\n", replace: "      - worker-1-data:/data\n",
                 expectedError: "each worker has a data volume of its own"),
        Breakage(why: "an undeclared volume", file: "docker-compose.yml",
                 find: "  prometheus-data:\n", replace: "",
                 expectedError: "named volume prometheus-data is not declared"),
        Breakage(why: "a dependency on a missing service", file: "docker-compose.yml",
                 find: "      - worker-2\n", replace: "      - worker-9\n",
                 expectedError: "depends_on unknown service worker-9"),
        Breakage(why: "Prometheus missing a worker", file: "prometheus.yml",
                 find: "          - worker-2:9090\n", replace: "",
                 expectedError: "does not scrape worker-2:9090"),
    ]

    @Test("a broken copy fails with the expected error", arguments: breakages)
    func brokenCopyFails(breakage: Breakage) throws {
        let fm = FileManager.default
        let scratch = fm.temporaryDirectory.appendingPathComponent("shardflow-compose-\(UUID().uuidString)")
        let compose = scratch.appendingPathComponent("compose")
        try fm.createDirectory(at: compose, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: scratch) }
        // The same layout as the project: compose/ beside the Dockerfile its build context needs.
        try fm.copyItem(at: Self.root.appendingPathComponent("Dockerfile"), to: scratch.appendingPathComponent("Dockerfile"))
        for name in ["docker-compose.yml", "prometheus.yml"] {
            var text = try String(contentsOf: Self.root.appendingPathComponent("compose/\(name)"), encoding: .utf8)
            if name == breakage.file {
                #expect(text.contains(breakage.find), "the compose files changed; update this breakage")
                text = text.replacingOccurrences(of: breakage.find, with: breakage.replace)
            }
            try text.write(to: compose.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let run = try Self.validate(compose.appendingPathComponent("docker-compose.yml"))
        #expect(run.status != 0)
        #expect(run.output.contains(breakage.expectedError), "\(run.output)")
    }
}
