// Several datasets trained together (multi-task runs): one SampleSource whose samples carry their
// dataset's index as `task`, drawn in proportion to sampling weights, and a Transform that gives every
// task its own pipeline.
//
// The mixture is a fixed virtual list the DataLoader shuffles like any source: dataset t fills
// slots_t = round(L·w_t/Σw) slots with its samples in cyclic order (slot j → sample j mod n_t). L is the
// smallest length at which every dataset gets at least its n_t samples, so each epoch shows every sample
// of every dataset at least once and the smaller datasets repeat (each repeat augmented afresh: the
// loader seeds augmentation by position). Order, augmentation and resumption therefore come from the
// DataLoader unchanged: seeded, independent of threads, resumable from (epoch, index).
//
// Legend: T datasets, n_t samples and w_t weight of dataset t, L virtual length.
import AdaTensor

/// Samples of T datasets mixed by weight; `sample.task` = the dataset's index.
public struct MixedSource: SampleSource {
    public let sources: [any SampleSource]
    public let weights: [Double]
    /// Virtual slots per dataset (their sum is `count`).
    public let slots: [Int]
    private let firstSlot: [Int]

    public init(sources: [any SampleSource], weights: [Double]) {
        precondition(!sources.isEmpty && sources.count == weights.count, "MixedSource: \(sources.count) sources for \(weights.count) weights")
        precondition(weights.allSatisfy { $0 > 0 && $0.isFinite }, "MixedSource: weights must be > 0, got \(weights)")
        precondition(sources.allSatisfy { $0.count > 0 }, "MixedSource: every dataset needs samples")
        self.sources = sources
        self.weights = weights
        let total = weights.reduce(0, +)
        let shares = weights.map { $0 / total }
        // Smallest L with round(L·share_t) ≥ n_t for every t.
        let length = zip(sources, shares).map { Int(((Double($0.count) - 0.5) / $1).rounded(.up)) }.max()!
        slots = zip(sources, shares).map { max($0.count, Int((Double(length) * $1).rounded())) }
        var starts: [Int] = [], running = 0
        for s in slots { starts.append(running); running += s }
        firstSlot = starts
    }

    public var count: Int { slots.reduce(0, +) }

    /// (task, index within that dataset) of virtual slot `index`.
    public func locate(_ index: Int) -> (task: Int, index: Int) {
        precondition(index >= 0 && index < count, "MixedSource: slot \(index) outside 0..<\(count)")
        let task = firstSlot.lastIndex { $0 <= index }!
        return (task, (index - firstSlot[task]) % sources[task].count)
    }

    public func sample(at index: Int) throws -> Sample {
        let (task, inner) = locate(index)
        var sample = try sources[task].sample(at: inner)
        sample.task = task
        return sample
    }
}

/// Applies `pipelines[sample.task]`: each dataset of a multi-task run keeps its own transforms.
public struct PerTaskTransforms: Transform {
    public let pipelines: [[any Transform]]

    public init(_ pipelines: [[any Transform]]) { self.pipelines = pipelines }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) throws {
        precondition(pipelines.indices.contains(sample.task), "PerTaskTransforms: sample '\(sample.name)' has task \(sample.task), but there are \(pipelines.count) pipelines")
        for transform in pipelines[sample.task] { try transform.apply(&sample, generator: &generator) }
    }
}
