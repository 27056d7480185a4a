import AsyncHTTPClient
import NIOCore

/// Asks a worker's HTTP endpoint on this host how it is; the benchmark and the tests use it.
public enum HealthProbe {
    public struct NotReady: Error, CustomStringConvertible {
        public var description: String
    }

    /// GET `path` on 127.0.0.1:`port`; nil when nothing answers.
    public static func get(port: Int, path: String) async -> (status: Int, body: String)? {
        do {
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            let body = try await response.body.collect(upTo: 16 << 20)
            return (Int(response.status.code), String(buffer: body))
        } catch {
            return nil
        }
    }

    /// Waits until `/readyz` answers 200, or throws with the last answer after `timeout`.
    public static func waitUntilReady(port: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now.advanced(by: timeout)
        var last = "no answer"
        while ContinuousClock.now < deadline {
            if let answer = await get(port: port, path: "/readyz") {
                if answer.status == 200 { return }
                last = answer.body
            }
            try await Task.sleep(for: .milliseconds(250))
        }
        throw NotReady(description: "worker on port \(port) not ready after \(timeout): \(last)")
    }
}
