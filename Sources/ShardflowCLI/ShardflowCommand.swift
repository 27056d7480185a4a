import ArgumentParser

@main
struct ShardflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shardflow",
        abstract: "A durable workflow executor driven by Kafka.",
        subcommands: [
            WorkerCommand.self,
            TopicsCommand.self,
            SubmitCommand.self,
            CancelCommand.self,
            SendEventCommand.self,
            TailCommand.self,
            AdminCommand.self,
            InspectCommand.self,
            DrillCommand.self,
            CheckCommand.self,
            MockLLMCommand.self,
            BenchCommand.self,
            BenchEngineCommand.self,
            BenchTakeoverCommand.self,
            BenchLLMCallsCommand.self,
            DemoCommand.self,
            DevCommand.self,
        ]
    )
}
