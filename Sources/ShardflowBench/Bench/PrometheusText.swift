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

    private static func samples(_ name: String, in text: String, matching: String) -> [Double] {
        text.split(separator: "\n").filter { line in
            guard line.hasPrefix(name) else { return false }
            let next = line.dropFirst(name.count).first
            return (next == "{" || next == " ") && (matching.isEmpty || line.contains(matching))
        }.compactMap { Double($0.split(separator: " ").last ?? "") }
    }
}
