// `adaroute bench data`: images/s through decode + augment + batch (DataLoader) on a dataset folder,
// with 1 and all threads. The consumer does no work, so this is the pipeline's ceiling.
//
// Legend: B = batch size, K = timed batches, crop = side of the square training crop.
// It measures the real training pipeline: SegmentationDataset (JPEG/PNG decode) and mmseg's
// RandomResize → RandomCrop → RandomFlip → PhotoMetricDistortion → Normalize → Pad.
import AdaData
import AdaTensor
import Foundation

public struct DataBenchmarkRow: Sendable {
    public let threads: Int
    public let batches: Int
    public let images: Int
    public let seconds: Double
    public var imagesPerSecond: Double { Double(images) / seconds }
    public var millisecondsPerBatch: Double { 1000 * seconds / Double(batches) }
}

public enum DataBenchmark {
    /// The dataset split (every label 0…254 accepted: the benchmark knows no class list) and the
    /// default mmseg training transforms at a square crop.
    public static func pipeline(root: String, split: String, crop: Int) throws -> (any SampleSource, [any Transform]) {
        let config = DatasetConfig(root: root, classes: (0..<255).map { "class\($0)" })
        let (source, _) = try SegmentationDataset.index(config, split: split)
        var pipeline = PipelineConfig()
        pipeline.crop = [crop, crop]
        return (source, pipeline.trainTransforms())
    }

    /// Times `batches` batches of `batchSize` from a fresh loader with `threads` workers (and as many
    /// kernel threads), from creation to the last batch (pipeline fill included).
    public static func run(source: any SampleSource, transforms: [any Transform], batchSize: Int, threads: Int,
                           batches: Int, seed: UInt64 = 0) throws -> DataBenchmarkRow {
        precondition(batches >= 1, "bench data: batches must be ≥ 1, got \(batches)")
        let previousThreads = Runtime.threads
        Runtime.setThreads(threads)
        defer { Runtime.setThreads(previousThreads) }
        let start = Stopwatch.now()
        let loader = DataLoader(source: source, transforms: transforms, batchSize: batchSize, shuffle: true,
                                dropLast: true, seed: seed, workers: threads)
        var images = 0
        for _ in 0..<batches { images += try loader.next().names.count }
        let seconds = Stopwatch.now() - start
        loader.stop()
        return DataBenchmarkRow(threads: threads, batches: batches, images: images, seconds: seconds)
    }
}
