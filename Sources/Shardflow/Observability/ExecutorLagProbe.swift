import Metrics
import ShardflowSupport

/// How long work that is ready to run waits for a thread of the Swift runtime: the worker's saturation,
/// in the time every step feels it. Each hop of a step (its HTTP answer resuming it, its result waking
/// the shard's loop, the claim starting the next step) waits this long in the runtime's queue, so when
/// the worker has more runnable work than CPU the lag, not the step, is where its time goes (in
/// `shardflow demo` on 2 shared cores: 350–560 ms per hop, against under 5 ms when not saturated).
///
/// Every `interval` the probe gives up its thread (`Task.yield()`), which puts it at the back of the
/// runtime's queue, and records how long it took to get a thread back:
/// `shardflow_executor_lag_seconds` (a histogram, as Node's event-loop lag or Tokio's scheduling delay).
struct ExecutorLagProbe: Sendable {
    var interval: Duration = .milliseconds(100)

    func run() async {
        let lag = Metrics.Timer(label: "shardflow_executor_lag_seconds")
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            let asked = ContinuousClock.now
            await Task.yield()
            lag.recordNanoseconds((ContinuousClock.now - asked).nanoseconds)
        }
    }
}
