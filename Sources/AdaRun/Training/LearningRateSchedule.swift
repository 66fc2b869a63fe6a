// Iteration-based learning rate: linear warm-up from warmup_ratio·lr, then poly or cosine decay to
// min_lr at the last iteration (mmseg's PolyLR / CosineAnnealingLR with LinearLR warm-up).
import Foundation

public struct LearningRateSchedule: Sendable {
    public let baseLR: Double
    public let minLR: Double
    public let iterations: Int
    public let warmupIterations: Int
    public let warmupRatio: Double
    public let kind: ScheduleKind
    public let power: Double

    public init(train: TrainSection) {
        baseLR = train.lr
        minLR = train.minLr
        iterations = train.iterations
        warmupIterations = train.warmupIters
        warmupRatio = train.warmupRatio
        kind = train.schedule
        power = train.power
    }

    /// The rate for the optimizer step taken at 0-based iteration `i`.
    public func rate(at i: Int) -> Double {
        let t = Double(min(max(i, 0), iterations)) / Double(max(iterations, 1))
        var lr: Double
        switch kind {
        case .constant: lr = baseLR
        case .poly: lr = (baseLR - minLR) * pow(1 - t, power) + minLR
        case .cosine: lr = minLR + 0.5 * (baseLR - minLR) * (1 + cos(Double.pi * t))
        }
        if i < warmupIterations {
            let progress = Double(i) / Double(warmupIterations)
            lr *= warmupRatio + (1 - warmupRatio) * progress
        }
        return lr
    }
}
