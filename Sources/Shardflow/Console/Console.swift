import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import ShardflowEngine
import ShardflowJSON

/// The web console, served by the worker's HTTP endpoint beside `/metrics`: a page with every asset in it
/// (it works offline) and a small JSON API it polls. Reading is open to whoever reaches the endpoint (it
/// listens on loopback unless configured otherwise); operator actions need `--console-actions`, the
/// admin token, and a same-origin request.
public struct Console: Sendable {
    /// What operator actions need: the token every request must carry, and the client that publishes
    /// the control messages (exactly as `shardflow admin` does, so they are answered on control-results).
    public struct Actions: Sendable {
        public var token: String
        public var control: ControlClient
        public init(token: String, control: ControlClient) {
            self.token = token
            self.control = control
        }
    }

    /// The control commands the console offers.
    public static let actionTypes: Set<ControlCommandType> = [.bumpEpoch, .resumeExecutors, .failPendingTasks, .failParkedWorkflows]

    public let worker: Worker
    public let actions: Actions?

    public init(worker: Worker, actions: Actions?) {
        self.worker = worker
        self.actions = actions
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        let console = self
        router.get("/console") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(string: ConsolePage.html)))
        }
        router.get("/console/api/overview") { _, _ -> Response in
            let readiness = console.worker.readiness()
            let configuration = console.worker.configuration
            return try Self.json(ConsoleOverview(
                group: configuration.groupID, topicsPrefix: configuration.topics.prefix,
                partitionCount: console.worker.workflowsPartitionCount, ready: readiness.isReady,
                notReadyReasons: readiness.reasons, actionsEnabled: console.actions != nil,
                shards: console.worker.shardSnapshots()))
        }
        router.get("/console/api/workflows/:id") { _, context -> Response in
            let id = context.parameters.get("id") ?? ""
            guard InboundDecoding.isValidWorkflowId(id) else {
                return Self.text(.badRequest, "a workflowId is 1 to 200 characters of [A-Za-z0-9._:-]")
            }
            guard let found = try console.worker.lookUpWorkflow(id) else {
                return Self.text(.serviceUnavailable, "the worker has not read the partition count yet")
            }
            return try Self.json(found)
        }
        router.get("/console/api/lists") { _, _ -> Response in
            try Self.json(console.worker.shardLists())
        }
        router.post("/console/api/actions") { request, _ -> Response in
            try await console.act(request)
        }
    }

    /// An operator action: refused unless actions are on, the request is same-origin, and it carries the token.
    func act(_ request: Request) async throws -> Response {
        guard let actions else {
            return try Self.json(ConsoleActionResponse(sent: false, error: "operator actions are off: start the worker with --console-actions and an admin token"),
                                 status: .forbidden)
        }
        if let refusal = Self.crossSiteRefusal(request.headers, authority: request.head.authority) {
            return try Self.json(ConsoleActionResponse(sent: false, error: refusal), status: .forbidden)
        }
        let given = request.headers[.authorization] ?? ""
        guard Self.constantTimeEqual(given, "Bearer " + actions.token) else {
            return try Self.json(ConsoleActionResponse(sent: false, error: "missing or wrong admin token"), status: .unauthorized)
        }
        let body = try await request.body.collect(upTo: 64 * 1024)
        let action: ConsoleActionRequest
        do {
            action = try JSONCoding.decode(ConsoleActionRequest.self, from: Array(buffer: body))
        } catch {
            return try Self.json(ConsoleActionResponse(sent: false, error: "the action is not valid JSON of {type, shard, workflowId, reason}"),
                                 status: .badRequest)
        }
        guard Self.actionTypes.contains(action.type) else {
            return try Self.json(ConsoleActionResponse(sent: false, error: "the console does not send \(action.type.rawValue)"), status: .badRequest)
        }
        if let id = action.workflowId, !(action.type == .failParkedWorkflows && InboundDecoding.isValidWorkflowId(id)) {
            return try Self.json(ConsoleActionResponse(sent: false, error: "workflowId goes only with failParkedWorkflows, as 1 to 200 characters of [A-Za-z0-9._:-]"),
                                 status: .badRequest)
        }
        guard let count = worker.workflowsPartitionCount else {
            return try Self.json(ConsoleActionResponse(sent: false, error: "the worker has not read the partition count yet"), status: .serviceUnavailable)
        }
        let shard = action.shard ?? action.workflowId.map { ShardRouting.partition(ofWorkflowId: $0, partitionCount: count) }
        guard let shard, (0..<count).contains(shard) else {
            return try Self.json(ConsoleActionResponse(sent: false, error: "shard must be from 0 to \(count - 1)"), status: .badRequest)
        }
        if let reason = action.reason, reason.utf8.count > MessageLimits.maxReasonBytes {
            return try Self.json(ConsoleActionResponse(sent: false, error: "reason is longer than \(MessageLimits.maxReasonBytes) bytes"), status: .badRequest)
        }
        let idPrefix = LoadGenerator.runId(prefix: "console-\(action.type.rawValue)")
        let answers = try await actions.control.send(action.type, shards: [shard], reason: action.reason ?? "from the console",
                                                     idPrefix: idPrefix, wait: true, timeout: .seconds(30),
                                                     workflowId: action.workflowId)
        guard let answer = answers.first else {
            return try Self.json(ConsoleActionResponse(sent: true, commandId: "\(idPrefix)-\(shard)",
                                                       error: "published, but no answer on control-results within 30 s"),
                                 status: .gatewayTimeout)
        }
        return try Self.json(ConsoleActionResponse(
            sent: true, commandId: answer.commandId, status: answer.status.rawValue, error: answer.error, epoch: answer.epoch,
            affectedWorkflows: answer.affected.workflows, affectedTasks: answer.affected.tasks))
    }

    /// Why a request is not from the console's own page, if it is not. Browsers send `Origin` (and
    /// `Sec-Fetch-Site`) with every cross-site POST, and a custom header cannot be sent cross-site without a
    /// CORS preflight, which this server never grants: a forged form or script on another site is refused.
    static func crossSiteRefusal(_ headers: HTTPFields, authority: String?) -> String? {
        guard headers[HTTPField.Name("X-Shardflow-Console")!] == "1" else {
            return "cross-site request refused: the X-Shardflow-Console header is missing"
        }
        if let site = headers[HTTPField.Name("Sec-Fetch-Site")!], site != "same-origin" && site != "none" {
            return "cross-site request refused (Sec-Fetch-Site: \(site))"
        }
        if let origin = headers[.origin] {
            // HTTP/1's Host header arrives as the request's authority.
            let host = authority ?? ""
            guard !host.isEmpty, origin == "http://\(host)" || origin == "https://\(host)" else {
                return "cross-site request refused: Origin \(origin) is not this console's"
            }
        }
        return nil
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for index in 0..<min(x.count, y.count) { difference |= x[index] ^ y[index] }
        return difference == 0
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
        Response(status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(bytes: try JSONCoding.encodeBytes(value))))
    }

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(status: status, headers: [.contentType: "text/plain; charset=utf-8"],
                 body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }
}
