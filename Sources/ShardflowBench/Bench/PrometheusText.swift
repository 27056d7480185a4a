/// Reads figures out of a worker's `/metrics` page (Prometheus text format).
public enum PrometheusText {
    /// The sum of the samples of metric `name` whose label set contains `matching` (all when empty).
    public static func sum(_ name: String, in text: String, matching: String = "") -> Double {
        samples(name, in: text, matching: matching).reduce(0, +)
    }

    /// The largest sample of metric `name` (nil when it has none).
    public static func max(_ name: String, in text: String, matching: String = "") -> Double? {
        samples(name, in: text, matching: matching).max()
    }

    /// A histogram's cumulative bucket counts by finite upper bound (`le`), summed over label sets; +Inf left out.
    public static func buckets(_ histogram: String, in text: String) -> [Double: Double] {
        let prefix = histogram + "_bucket{"
        var buckets: [Double: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix(prefix) {
            guard let start = line.range(of: #"le=""#)?.upperBound,
                  let end = line[start...].firstIndex(of: "\""),
                  let bound = Double(line[start..<end]), bound.isFinite,
                  let count = Double(line.split(separator: " ").last ?? "")
            else { continue }
            buckets[bound, default: 0] += count
        }
        return buckets
    }

    private static func samples(_ name: String, in text: String, matching: String) -> [Double] {
        text.split(separator: "\n").filter { line in
            guard line.hasPrefix(name) else { return false }
            let next = line.dropFirst(name.count).first
            return (next == "{" || next == " ") && (matching.isEmpty || line.contains(matching))
        }.compactMap { Double($0.split(separator: " ").last ?? "") }
    }
}
