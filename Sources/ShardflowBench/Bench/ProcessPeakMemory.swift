import Foundation

/// Reads a process's peak resident set size, for the bench's "worker peak RSS" line.
public enum ProcessPeakMemory {
    /// Peak RSS in bytes of a live process (`VmHWM` in `/proc/<pid>/status`); nil where that file
    /// does not exist (not Linux, or the process has exited). Sample it before stopping the worker.
    public static func peakRSSBytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        return peakRSSBytes(procStatus: status)
    }

    /// The `VmHWM:  123456 kB` line of a `/proc/<pid>/status` text, in bytes.
    public static func peakRSSBytes(procStatus: String) -> Int? {
        for line in procStatus.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.dropFirst("VmHWM:".count).split(whereSeparator: \.isWhitespace)
            guard let value = fields.first.flatMap({ Int($0) }), value >= 0 else { return nil }
            let unit = fields.dropFirst().first?.lowercased() ?? "kb"
            switch unit {
            case "kb": return value * 1024
            case "mb": return value * 1024 * 1024
            default: return nil
            }
        }
        return nil
    }
}
