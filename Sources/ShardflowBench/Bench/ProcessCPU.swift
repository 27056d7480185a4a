import Foundation

/// CPU time a process has used (user + system), from `/proc/<pid>/stat`: the bench's CPU per step of the
/// worker and of the mock LLM.
public enum ProcessCPU {
    /// Seconds of user + system CPU of a live process; nil where `/proc` has no such process.
    public static func seconds(pid: Int32) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return nil }
        return seconds(procStat: stat, ticksPerSecond: Double(sysconf(Int32(_SC_CLK_TCK))))
    }

    /// utime and stime (fields 14 and 15) of a `/proc/<pid>/stat` line; the command name in parentheses may
    /// hold spaces, so the fields are counted after its closing parenthesis.
    public static func seconds(procStat: String, ticksPerSecond: Double) -> Double? {
        guard let close = procStat.lastIndex(of: ")"), ticksPerSecond > 0 else { return nil }
        let fields = procStat[procStat.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3), so utime (field 14) is fields[11] and stime fields[12].
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / ticksPerSecond
    }
}
