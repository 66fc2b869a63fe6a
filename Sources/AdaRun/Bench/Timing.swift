// Wall-clock timing helpers for the benchmarks: warm-up, then repeated timed runs, reported as
// median / min / max (these machines are noisy: quote medians).
import Foundation

public struct TimingSummary: Sendable {
    public let seconds: [Double]
    public var median: Double { seconds.sorted()[seconds.count / 2] }
    public var min: Double { seconds.min() ?? .nan }
    public var max: Double { seconds.max() ?? .nan }
}

public enum Stopwatch {
    public static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) * 1e-9 }

    /// Runs `body` `warmup` times untimed, then `repeats` timed runs.
    public static func measure(warmup: Int, repeats: Int, _ body: () -> Void) -> TimingSummary {
        for _ in 0..<warmup { body() }
        var times: [Double] = []
        for _ in 0..<max(repeats, 1) {
            let start = now()
            body()
            times.append(now() - start)
        }
        return TimingSummary(seconds: times)
    }
}
