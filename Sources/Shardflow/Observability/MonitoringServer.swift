import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus

/// What `/readyz` reports: ready, or the reasons the worker is not.
public struct ReadinessReport: Sendable {
    public var reasons: [String]
    public var isReady: Bool { reasons.isEmpty }

    public init(reasons: [String]) {
        self.reasons = reasons
    }
}

/// The worker's HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (the process answers),
/// `/readyz` (group joined, shards open, broker reachable) and the web console (`/console`). Bound to
/// 127.0.0.1 unless configured.
public struct MonitoringServer: Sendable {
    public var host: String
    public var port: Int
    public let registry: PrometheusCollectorRegistry
    public let readiness: @Sendable () async -> ReadinessReport
    /// The web console under `/console`, when the worker serves one.
    public var console: Console?

    public init(
        host: String = "127.0.0.1",
        port: Int,
        registry: PrometheusCollectorRegistry,
        console: Console? = nil,
        readiness: @escaping @Sendable () async -> ReadinessReport
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.console = console
        self.readiness = readiness
    }

    /// A Hummingbird application (a ServiceLifecycle service) serving the endpoints.
    public func application(logger: Logger) -> some ApplicationProtocol {
        let router = Router()
        let registry = self.registry
        let readiness = self.readiness
        router.get("/metrics") { _, _ -> Response in
            let bytes = registry.emitToBuffer()
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes))
            )
        }
        router.get("/healthz") { _, _ -> String in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let report = await readiness()
            let text = report.isReady ? "ready\n" : "not ready: " + report.reasons.joined(separator: "; ") + "\n"
            return Response(
                status: report.isReady ? .ok : .serviceUnavailable,
                headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: text))
            )
        }
        console?.addRoutes(to: router)
        return Application(
            router: router,
            configuration: .init(address: .hostname(host, port: port), serverName: "shardflow"),
            logger: logger
        )
    }

    /// Installs the Prometheus backend for swift-metrics (once per process) with buckets that suit step,
    /// workflow and replay durations.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        let short: [Duration] = [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100),
                                 .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5),
                                 .seconds(10), .seconds(30), .seconds(60)]
        let long: [Duration] = [.seconds(1), .seconds(5), .seconds(15), .seconds(30), .seconds(60), .seconds(120),
                                .seconds(300), .seconds(600), .seconds(1200), .seconds(1800), .seconds(3600)]
        factory.defaultDurationHistogramBuckets = short
        factory.durationHistogramBuckets["shardflow_workflow_duration_seconds"] = long
        MetricsSystem.bootstrap(factory)
        return registry
    }
}
