import ArgumentParser
import Foundation
import Shardflow
import ShardflowEngine

struct TailCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tail",
        abstract: "Print what Shardflow publishes: completions, replays, control-results or dead-letters.")

    @OptionGroup var kafka: KafkaOptions
    @Argument(help: "completions, replays, control-results or dead-letters") var stream: String
    @Flag(help: "Print each message's JSON as it is.") var json = false
    @Flag(help: "Start at the beginning of the topic instead of its end.") var fromBeginning = false
    @Option(help: "Stop after this many messages.") var limit: Int?

    func validate() throws {
        guard ["completions", "replays", "control-results", "dead-letters"].contains(stream) else {
            throw ValidationError("unknown stream '\(stream)': completions, replays, control-results or dead-letters")
        }
    }

    func run() async throws {
        guard let topic = kafka.topics.named(stream) else { throw ValidationError("unknown stream \(stream)") }
        let reader = try await TopicReader(configuration: try kafka.configuration(), topic: topic,
                                           fromBeginning: fromBeginning)
        var printed = 0
        for await batch in reader.batches() {
            for message in batch {
                let text = String(decoding: message.value, as: UTF8.self)
                print(json ? text : TailRendering.line(stream: stream, json: message.value) ?? text)
                printed += 1
                if let limit, printed >= limit {
                    await reader.close()
                    return
                }
            }
            fflush(nil)  // all output streams; naming stdout is not concurrency-safe
        }
    }
}
