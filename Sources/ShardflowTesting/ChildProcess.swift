import Foundation
import ShardflowSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A child process that can never outlive this one: it is started through `setpriv --pdeathsig KILL`
/// (util-linux) from a dedicated thread that lives until the child has exited, so the kernel kills the child
/// when this process dies for any reason (the death signal follows the *thread* that forked). Used for the
/// local broker and for the worker processes of the benchmark and the tests.
public final class ChildProcess: Sendable {
    public let pid: pid_t
    public let arguments: [String]
    private let exit = ExitStatusBox()
    private let waiter: DedicatedThread

    /// Starts `arguments` (the first is the program, looked up on PATH), with standard output and error
    /// appended to `outputPath` (or discarded) and standard input from /dev/null.
    public init(arguments: [String], outputPath: String? = nil) throws {
        precondition(!arguments.isEmpty, "a child process needs a program")
        self.arguments = arguments
        let full = ["setpriv", "--pdeathsig", "KILL", "--"] + arguments
        let spawned = SpawnedPID()
        let exit = exit
        waiter = DedicatedThread(name: "child-waiter") {
            let pid = spawn(full, outputPath: outputPath)
            spawned.set(pid)
            guard pid > 0 else { exit.set(127); return }
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            // Exit code, or 128 + the signal that ended it (the shell's convention).
            exit.set((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
        }
        let pid = spawned.get()
        guard pid > 0 else {
            waiter.join()
            throw ChildProcessError(description: "cannot start \(arguments[0]) through setpriv (util-linux): errno \(-pid)")
        }
        self.pid = pid
    }

    deinit {
        if !exit.isSet { Glibc.kill(pid, SIGKILL) }
    }

    public var hasExited: Bool { exit.isSet }
    /// The exit code (128 + signal when a signal ended it), once it has exited.
    public var exitStatus: Int32? { exit.value }

    public func signal(_ signal: Int32) {
        if !exit.isSet { Glibc.kill(pid, signal) }
    }

    /// SIGKILL: the process gets no chance to clean up (what `kill -9` does).
    public func kill() { signal(SIGKILL) }

    /// Waits until the process has exited; returns its exit status.
    @discardableResult
    public func waitForExit() async -> Int32 {
        while !exit.isSet { try? await Task.sleep(for: .milliseconds(20)) }
        waiter.join()
        return exit.value ?? -1
    }

    /// SIGTERM, then SIGKILL if it is still running after `timeout`.
    @discardableResult
    public func terminate(timeout: Duration = .seconds(10)) async -> Int32 {
        signal(SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: timeout)
        while !exit.isSet && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        if !exit.isSet { kill() }
        return await waitForExit()
    }

    /// SIGTERM, then SIGKILL after `grace`; blocks the calling thread until the process is reaped (for deinit
    /// and other synchronous contexts; prefer `terminate(timeout:)` in async code).
    public func terminateNow(grace: Duration = .seconds(1)) {
        signal(SIGTERM)
        let deadline = ContinuousClock.now.advanced(by: grace)
        while !exit.isSet && ContinuousClock.now < deadline { usleep(10_000) }
        if !exit.isSet { kill() }
        waiter.join()
    }

    /// Runs a command to its end and returns its exit status and combined output.
    public static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("child-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let child = try ChildProcess(arguments: arguments, outputPath: path)
        let status = await child.waitForExit()
        let output = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
        return (status, output)
    }
}

public struct ChildProcessError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

/// The exit status, set once by the waiter thread.
private final class ExitStatusBox: Sendable {
    private let status = Mutex<Int32?>(nil)

    func set(_ value: Int32) { status.withLock { if $0 == nil { $0 = value } } }
    var value: Int32? { status.withLock { $0 } }
    var isSet: Bool { value != nil }
}

/// Hands the spawned pid from the waiter thread to the starting one, which blocks until it arrives (`init`
/// is synchronous, so it waits on a `ConditionLock`).
private final class SpawnedPID: Sendable {
    private let lock = ConditionLock()
    // `nonisolated(unsafe)`: only accessed while `lock` is held.
    nonisolated(unsafe) private var pid: pid_t?

    func set(_ value: pid_t) {
        lock.withLock {
            pid = value
            lock.broadcast()
        }
    }

    func get() -> pid_t {
        lock.withLock {
            while pid == nil { lock.wait(seconds: 1) }
            return pid ?? -1
        }
    }
}

/// posix_spawnp with stdin on /dev/null and stdout/stderr appended to `outputPath` (or /dev/null);
/// returns the pid, or -errno.
private func spawn(_ arguments: [String], outputPath: String?) -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    let output = outputPath ?? "/dev/null"
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    let cArguments = arguments.map { strdup($0) } + [nil]
    defer { for argument in cArguments { free(argument) } }
    var pid: pid_t = 0
    let result = posix_spawnp(&pid, arguments[0], &actions, nil, cArguments, environ)
    return result == 0 ? pid : -result
}
