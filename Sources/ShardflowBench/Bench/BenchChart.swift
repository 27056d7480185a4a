import Foundation

/// The bench chart as a self-contained SVG: one dot per workflow (completion time against creation
/// order), the creation-order decile medians as a step line, axes with ticks, and the headline figures.
public struct BenchChart: Sendable {
    public var report: BenchReport
    public var width = 1000.0
    public var height = 600.0

    private let left = 80.0, right = 30.0, top = 78.0, bottom = 70.0

    public init(report: BenchReport) {
        self.report = report
    }

    public func svg() -> String {
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let unit = TimeUnit(maxMs: report.completionTime?.maxMs ?? 0)
        let yTicks = Self.niceTicks(upTo: (report.completionTime?.maxMs ?? 0) / unit.ms)
        let yMax = yTicks.last ?? 1
        let xTicks = Self.niceTicks(upTo: Double(max(1, report.workflows)))
        let xMax = xTicks.last ?? 1
        func x(_ index: Double) -> Double { left + index / xMax * plotWidth }
        func y(_ ms: Double) -> Double { top + plotHeight - (ms / unit.ms) / yMax * plotHeight }

        var out: [String] = []
        out.append(
            ##"<svg xmlns="http://www.w3.org/2000/svg" width="\##(Self.n(width))" height="\##(Self.n(height))" "##
                + ##"viewBox="0 0 \##(Self.n(width)) \##(Self.n(height))" font-family="sans-serif" font-size="12">"##
        )
        out.append(##"<rect x="0" y="0" width="\##(Self.n(width))" height="\##(Self.n(height))" fill="white"/>"##)
        out.append(##"<text x="\##(Self.n(left))" y="26" font-size="15" font-weight="bold">\##(Self.escape(title()))</text>"##)
        out.append(##"<text x="\##(Self.n(left))" y="46" fill="#444">\##(Self.escape(subtitle()))</text>"##)

        // Grid and ticks.
        out.append(##"<g stroke="#e4e4e4" stroke-width="1">"##)
        for tick in yTicks { out.append(##"<line x1="\##(Self.n(left))" y1="\##(Self.n(y(tick * unit.ms)))" x2="\##(Self.n(left + plotWidth))" y2="\##(Self.n(y(tick * unit.ms)))"/>"##) }
        for tick in xTicks { out.append(##"<line x1="\##(Self.n(x(tick)))" y1="\##(Self.n(top))" x2="\##(Self.n(x(tick)))" y2="\##(Self.n(top + plotHeight))"/>"##) }
        out.append("</g>")
        out.append(##"<g fill="#333">"##)
        for tick in yTicks {
            out.append(##"<text x="\##(Self.n(left - 8))" y="\##(Self.n(y(tick * unit.ms) + 4))" text-anchor="end">\##(Self.label(tick))</text>"##)
        }
        for tick in xTicks {
            out.append(##"<text x="\##(Self.n(x(tick)))" y="\##(Self.n(top + plotHeight + 18))" text-anchor="middle">\##(BenchFormat.count(Int(tick)))</text>"##)
        }
        out.append("</g>")

        // Dots.
        out.append(##"<g fill-opacity="0.55">"##)
        for point in report.chartPoints {
            out.append(
                ##"<circle cx="\##(Self.n(x(Double(point.index))))" cy="\##(Self.n(y(point.completionMs)))" r="1.6" fill="\##(Self.color(point.status))"/>"##
            )
        }
        out.append("</g>")

        // Decile medians as a step line; a decile without completions breaks the line.
        var path = ""
        var previousEnd: Int?
        for decile in report.deciles {
            guard let median = decile.medianCompletionMs else {
                previousEnd = nil
                continue
            }
            let start = x(Double(decile.firstIndex)), end = x(Double(decile.lastIndex + 1)), level = y(median)
            path += previousEnd == decile.firstIndex ? "V\(Self.n(level))" : "M\(Self.n(start)) \(Self.n(level))"
            path += "H\(Self.n(end))"
            previousEnd = decile.lastIndex + 1
        }
        if !path.isEmpty {
            out.append(##"<path d="\##(path)" fill="none" stroke="#e07000" stroke-width="2.5"/>"##)
        }
        // The exact ideal's decile medians, dashed, beside the measured ones.
        if let ideal = report.exactIdeal {
            var idealPath = ""
            for (position, decile) in report.deciles.enumerated() where position < ideal.decileMedianMs.count {
                let level = y(ideal.decileMedianMs[position])
                idealPath += position == 0 ? "M\(Self.n(x(Double(decile.firstIndex)))) \(Self.n(level))" : "V\(Self.n(level))"
                idealPath += "H\(Self.n(x(Double(decile.lastIndex + 1))))"
            }
            out.append(##"<path d="\##(idealPath)" fill="none" stroke="#2e5aac" stroke-width="2" stroke-dasharray="6 4"/>"##)
        }

        // Axes and their labels.
        out.append(
            ##"<path d="M\##(Self.n(left)) \##(Self.n(top))V\##(Self.n(top + plotHeight))H\##(Self.n(left + plotWidth))" fill="none" stroke="#222" stroke-width="1.2"/>"##
        )
        out.append(
            ##"<text x="\##(Self.n(left + plotWidth / 2))" y="\##(Self.n(height - 22))" text-anchor="middle">creation order (workflow index)</text>"##
        )
        out.append(
            ##"<text transform="translate(22 \##(Self.n(top + plotHeight / 2))) rotate(-90)" text-anchor="middle">completion time (\##(unit.name))</text>"##
        )

        // Legend.
        let legendX = left + plotWidth - (report.exactIdeal == nil ? 300 : 400), legendY = 62.0
        out.append(##"<g font-size="11">"##)
        var offset = 0.0
        for status in [BenchWorkflowStatus.succeeded, .failed, .canceled] {
            out.append(##"<circle cx="\##(Self.n(legendX + offset))" cy="\##(Self.n(legendY - 4))" r="3.5" fill="\##(Self.color(status))"/>"##)
            out.append(##"<text x="\##(Self.n(legendX + offset + 7))" y="\##(Self.n(legendY))">\##(status.rawValue)</text>"##)
            offset += 75
        }
        out.append(
            ##"<line x1="\##(Self.n(legendX + offset - 4))" y1="\##(Self.n(legendY - 4))" x2="\##(Self.n(legendX + offset + 14))" y2="\##(Self.n(legendY - 4))" stroke="#e07000" stroke-width="2.5"/>"##
        )
        out.append(##"<text x="\##(Self.n(legendX + offset + 18))" y="\##(Self.n(legendY))">decile median</text>"##)
        if report.exactIdeal != nil {
            out.append(##"<line x1="\##(Self.n(legendX + offset + 100))" y1="\##(Self.n(legendY - 4))" x2="\##(Self.n(legendX + offset + 118))" y2="\##(Self.n(legendY - 4))" stroke="#2e5aac" stroke-width="2" stroke-dasharray="6 4"/>"##)
            out.append(##"<text x="\##(Self.n(legendX + offset + 122))" y="\##(Self.n(legendY))">ideal</text>"##)
        }
        out.append("</g>")
        out.append("</svg>")
        return out.joined(separator: "\n") + "\n"
    }

    func title() -> String {
        let m = report.metadata
        var title = "\(BenchFormat.count(report.workflows)) \(m.workflowKind) workflows × \(m.stepsPerWorkflow) steps, "
            + "\(m.shards) × \(m.slotsPerShard) slots"
        if let t = report.completionTime {
            title += ": p50 \(BenchFormat.duration(ms: t.p50Ms)), p99 \(BenchFormat.duration(ms: t.p99Ms)), max \(BenchFormat.duration(ms: t.maxMs))"
        }
        return title
    }

    func subtitle() -> String {
        var text = "\(BenchFormat.count(report.succeeded)) completed, \(BenchFormat.count(report.failed)) failed "
            + "(\(BenchFormat.percent(report.failed, of: report.workflows))), \(BenchFormat.count(report.stuck)) stuck"
        if let first = report.deciles.first, let last = report.deciles.last, report.deciles.count > 1 {
            text += "; earliest 10% median \(BenchReport.medianText(first)), latest 10% median \(BenchReport.medianText(last))"
        }
        if let ideal = report.exactIdeal {
            text += String(format: "; makespan %.2f × exact ideal", ideal.makespanRatio)
        } else if let ratio = report.makespan.ratio {
            text += String(format: "; makespan %.2f × lower bound", ratio)
        }
        return text
    }

    /// Seconds, minutes or hours, whichever keeps the axis labels short.
    struct TimeUnit {
        var name: String
        var ms: Double

        init(maxMs: Double) {
            if maxMs < 120_000 {
                (name, ms) = ("s", 1_000)
            } else if maxMs < 7_200_000 {
                (name, ms) = ("min", 60_000)
            } else {
                (name, ms) = ("h", 3_600_000)
            }
        }
    }

    /// Ticks 0, s, 2s, … at a 1/2/5 × 10^k step, the last one at or above `maximum` (about 5–10 ticks).
    static func niceTicks(upTo maximum: Double) -> [Double] {
        let top = maximum > 0 && maximum.isFinite ? maximum : 1
        let raw = top / 6
        let magnitude = pow(10, floor(log10(raw)))
        let normalized = raw / magnitude
        let step = (normalized <= 1 ? 1 : normalized <= 2 ? 2 : normalized <= 5 ? 5 : 10) * magnitude
        let count = Int((top / step).rounded(.up))
        return (0...max(1, count)).map { Double($0) * step }
    }

    static func color(_ status: BenchWorkflowStatus) -> String {
        switch status {
        case .succeeded: "#1f6fd1"
        case .failed: "#d62728"
        case .canceled, .incomplete: "#888888"
        }
    }

    /// A coordinate with at most one decimal.
    static func n(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.1f", rounded)
    }

    /// A tick label without trailing zeros.
    static func label(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
