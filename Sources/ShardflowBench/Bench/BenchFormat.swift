import Foundation

/// Human formatting shared by the bench report and the progress line.
public enum BenchFormat {
    /// `20000` → `20,000` (fixed grouping, independent of the machine's locale).
    public static func count(_ n: Int) -> String {
        let digits = String(n.magnitude)
        var out = ""
        for (i, ch) in digits.enumerated() {
            if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
            out.append(ch)
        }
        return n < 0 ? "-" + out : out
    }

    /// A duration in milliseconds in the most readable unit: `850 ms`, `4.2 s`, `12.1 min`, `1.5 h`.
    public static func duration(ms: Double) -> String {
        if ms < 1_000 { return String(format: "%.0f ms", ms) }
        if ms < 60_000 { return String(format: "%.1f s", ms / 1_000) }
        if ms < 3_600_000 { return String(format: "%.1f min", ms / 60_000) }
        return String(format: "%.2f h", ms / 3_600_000)
    }

    /// A percentage with two decimals: `0.57%`.
    public static func percent(_ part: Int, of whole: Int) -> String {
        guard whole > 0 else { return "0.00%" }
        return String(format: "%.2f%%", Double(part) * 100 / Double(whole))
    }

    /// Bytes as MiB with one decimal.
    public static func mebibytes(_ bytes: Int) -> String {
        String(format: "%.1f MiB", Double(bytes) / 1_048_576)
    }
}
