import Foundation
import Shardflow
import ShardflowBench
import Testing

#if canImport(FoundationXML)
import FoundationXML
#endif

/// Counts elements while checking the SVG parses as XML.
final class SVGElementCounter: NSObject, XMLParserDelegate {
    var counts: [String: Int] = [:]
    var rootName: String?

    func parser(
        _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
        attributes: [String: String] = [:]
    ) {
        if rootName == nil { rootName = elementName }
        counts[elementName, default: 0] += 1
    }
}

@Suite("Bench chart")
struct BenchChartTests {
    @Test("the SVG is well-formed XML with one dot per sampled workflow")
    func wellFormed() throws {
        let report = try BenchReport(
            records: BenchFixtures.fifoRecords(12_000, failEvery: 97), metadata: BenchFixtures.metadata(submitted: 12_000)
        )
        #expect(report.chartPoints.count == BenchReport.maxChartPoints)
        let svg = BenchChart(report: report).svg()
        let parser = XMLParser(data: Data(svg.utf8))
        let counter = SVGElementCounter()
        parser.delegate = counter
        #expect(parser.parse(), "XML error: \(String(describing: parser.parserError))")
        #expect(counter.rootName == "svg")
        // Dots plus the three legend markers.
        #expect(counter.counts["circle"] == BenchReport.maxChartPoints + 3)
        #expect(svg.contains("creation order"))
        #expect(svg.contains("completion time (min)"))
        #expect(svg.contains("12,000 llm-chain workflows"))
        #expect(svg.contains("#d62728"), "failed workflows are drawn in their own colour")
    }

    @Test("chart samples keep the whole creation range")
    func samplingSpansRun() throws {
        let report = try BenchReport(records: BenchFixtures.fifoRecords(20_000), metadata: BenchFixtures.metadata(submitted: 20_000))
        let indexes = report.chartPoints.map(\.index)
        #expect(indexes.first == 0)
        #expect((indexes.last ?? 0) >= 19_990)
        #expect(zip(indexes, indexes.dropFirst()).allSatisfy { $0 < $1 })
    }

    @Test("text in the title is escaped")
    func escapesText() throws {
        var metadata = BenchFixtures.metadata(submitted: 10)
        metadata.workflowKind = "a<b&c"
        let report = try BenchReport(records: BenchFixtures.fifoRecords(10), metadata: metadata)
        let svg = BenchChart(report: report).svg()
        #expect(svg.contains("a&lt;b&amp;c"))
        #expect(XMLParser(data: Data(svg.utf8)).parse())
    }

    @Test("long runs are labelled in minutes")
    func minuteAxis() throws {
        let records = (0..<20).map { i in
            BenchWorkflowRecord(
                index: i, workflowId: "m-\(i)", createdAt: BenchFixtures.start,
                completedAt: BenchFixtures.start + Int64(i + 1) * 60_000, status: .succeeded, steps: 3
            )
        }
        let svg = BenchChart(report: try BenchReport(records: records, metadata: BenchFixtures.metadata(submitted: 20))).svg()
        #expect(svg.contains("completion time (min)"))
        #expect(svg.contains(">20</text>"), "the y axis reaches the slowest workflow")
    }
}

@Suite("Bench formatting")
struct BenchFormattingTests {
    @Test("counts use thousands separators")
    func counts() {
        #expect(BenchFormat.count(0) == "0")
        #expect(BenchFormat.count(999) == "999")
        #expect(BenchFormat.count(20_000) == "20,000")
        #expect(BenchFormat.count(1_234_567) == "1,234,567")
        #expect(BenchFormat.count(-4_321) == "-4,321")
    }

    @Test("durations pick a readable unit")
    func durations() {
        #expect(BenchFormat.duration(ms: 850) == "850 ms")
        #expect(BenchFormat.duration(ms: 4_200) == "4.2 s")
        #expect(BenchFormat.duration(ms: 726_000) == "12.1 min")
        #expect(BenchFormat.percent(114, of: 20_000) == "0.57%")
    }

    @Test("the progress line shows counts, rate and ETA")
    func progressLine() {
        let start = Date(timeIntervalSince1970: 1_000)
        let line = BenchProgressLine(total: 2_000, startedAt: start)
        let text = line.format(completed: 900, failed: 100, now: start.addingTimeInterval(100))
        #expect(text == "900 completed, 100 failed, 1,000 in flight, 10.0/s, ETA 1:40, elapsed 1:40")
        let done = line.format(completed: 2_000, failed: 0, inFlight: 0, now: start.addingTimeInterval(3_700))
        #expect(done.contains("ETA done"))
        #expect(done.contains("elapsed 1:01:40"))
        let idle = line.format(completed: 0, failed: 0, now: start)
        #expect(idle.contains("ETA --:--"))
    }
}

@Suite("Process peak memory")
struct ProcessPeakMemoryTests {
    @Test("VmHWM is read from /proc status text")
    func parsesStatus() {
        let status = "Name:\tshardflow\nVmPeak:\t  900000 kB\nVmHWM:\t  318000 kB\nVmRSS:\t  300000 kB\n"
        #expect(ProcessPeakMemory.peakRSSBytes(procStatus: status) == 318_000 * 1024)
        #expect(ProcessPeakMemory.peakRSSBytes(procStatus: "Name:\tx\n") == nil)
        #expect(ProcessPeakMemory.peakRSSBytes(procStatus: "VmHWM:\tlots kB\n") == nil)
    }

    @Test("this process has a peak RSS where /proc exists")
    func ownProcess() {
        let own = ProcessPeakMemory.peakRSSBytes(pid: ProcessInfo.processInfo.processIdentifier)
        if FileManager.default.fileExists(atPath: "/proc/self/status") {
            #expect((own ?? 0) > 1_000_000)
        } else {
            #expect(own == nil)
        }
        #expect(ProcessPeakMemory.peakRSSBytes(pid: -1) == nil)
    }
}
