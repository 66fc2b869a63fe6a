// `adaroute eval`'s engine: every sample of a split goes through the test transforms (resize + normalise,
// mask left at the original resolution), Inference predicts at the original size, and one confusion matrix
// accumulates over the whole split (mmseg IoUMetric). Samples run one at a time: the model already uses
// every core, and decoding is small next to a forward pass.
//
// Legend: K classes, H0×W0 original image (and mask) size.
import AdaData
import AdaModels
import AdaTensor
import Foundation

public enum EvaluationError: Error, CustomStringConvertible, Equatable {
    case missingMask(sample: String)
    case maskSizeMismatch(sample: String, mask: (width: Int, height: Int), original: (width: Int, height: Int))

    public var description: String {
        switch self {
        case let .missingMask(sample):
            return "evaluation: sample '\(sample)' has no annotation (evaluation needs a labelled split)"
        case let .maskSizeMismatch(sample, mask, original):
            return "evaluation: sample '\(sample)': mask is \(mask.width)×\(mask.height) (W×H) but the image was \(original.width)×\(original.height); metrics are computed at the original resolution, so the test transforms must leave the mask unresized"
        }
    }

    public static func == (a: EvaluationError, b: EvaluationError) -> Bool { a.description == b.description }
}

public struct EvaluationResult: Sendable {
    public var confusion: ConfusionMatrix
    public var images: Int
    /// Wall time of the whole pass (decode, transforms, inference, counting).
    public var seconds: Double
    /// Of which inference (forward passes, resize, argmax).
    public var inferenceSeconds: Double

    public var metrics: SegmentationMetrics { confusion.metrics }
    public var imagesPerSecond: Double { seconds > 0 ? Double(images) / seconds : .nan }
}

public struct Evaluator {
    public var inference: Inference
    /// The test pipeline (`PipelineConfig.testTransforms()`): deterministic, mask at original size.
    public var transforms: [any Transform]
    public var ignoreIndex: Int

    public init(inference: Inference, transforms: [any Transform], ignoreIndex: Int = 255) {
        self.inference = inference
        self.transforms = transforms
        self.ignoreIndex = ignoreIndex
    }

    /// Evaluates samples 0..<count (or the first `limit`); `progress(done, total)` after each image.
    public func run(on source: any SampleSource, limit: Int? = nil,
                    progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> EvaluationResult {
        let total = min(source.count, limit ?? source.count)
        precondition(total >= 0, "Evaluator.run: limit \(limit ?? 0) is negative")
        var confusion = ConfusionMatrix(classes: inference.model.classes(task: inference.options.taskId ?? 0), ignoreIndex: ignoreIndex)
        var inferenceSeconds = 0.0
        let start = Stopwatch.now()
        // The weights do not change while evaluating: each linear layer's packed panels are made once.
        try PackedGEMM.reusingPackedWeights {
            for index in 0..<total {
                var sample = try source.sample(at: index)
                // Test transforms draw nothing; a fixed generator keeps the signature satisfied.
                var generator = RandomGenerator(seed: 0)
                for transform in transforms { try transform.apply(&sample, generator: &generator) }
                guard let mask = sample.mask else { throw EvaluationError.missingMask(sample: sample.name) }
                guard mask.width == sample.originalWidth && mask.height == sample.originalHeight else {
                    throw EvaluationError.maskSizeMismatch(sample: sample.name, mask: (mask.width, mask.height),
                                                           original: (sample.originalWidth, sample.originalHeight))
                }
                let inferenceStart = Stopwatch.now()
                let prediction = inference.predict(sample)
                inferenceSeconds += Stopwatch.now() - inferenceStart
                confusion.add(predictions: prediction.labels, labels: mask.labels)
                progress?(index + 1, total)
            }
        }
        return EvaluationResult(confusion: confusion, images: total, seconds: Stopwatch.now() - start,
                                inferenceSeconds: inferenceSeconds)
    }
}
