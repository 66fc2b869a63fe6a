// `adaroute train`: a Trainer with validation on the config's val split.
import AdaData
import AdaModels
import Foundation

public enum TrainJob {
    public static func run(_ loaded: LoadedConfig, runDirectory: String, resume: Bool, interactive: Bool? = nil,
                           changedOnResume: Bool = false) throws -> TrainingSummary {
        let trainer = try Trainer(loaded: loaded, runDirectory: runDirectory, interactive: interactive)
        trainer.rewriteConfigOnResume = changedOnResume
        trainer.validator = try Validation.make(loaded.config)
        return try trainer.run(resume: resume)
    }

    /// `base` if it holds no run yet, else the first of base-2, base-3, … that does not.
    public static func freeDirectory(_ base: String) -> String {
        func taken(_ dir: String) -> Bool { FileManager.default.fileExists(atPath: dir + "/config.yaml") }
        guard taken(base) else { return base }
        var n = 2
        while taken("\(base)-\(n)") { n += 1 }
        return "\(base)-\(n)"
    }

    public static func describe(_ s: TrainingSummary) -> String {
        // A resumed run that had nothing left to do trained no step: no loss or speed to report.
        let trained = s.lastLoss.isFinite
        var lines = [trained ? "done: \(s.iterations) iterations, last loss \(String(format: "%.4f", s.lastLoss)), \(String(format: "%.1f", s.imagesPerSecond)) images/s"
                             : "done: \(s.iterations) iterations (no step trained in this call)"]
        if let best = s.bestMIoU, let at = s.bestIteration { lines.append(String(format: "best val mIoU %.2f at iteration %d", best, at)) }
        lines.append("trainable parameters \(s.trainableParameters.formatted()) of \(s.totalParameters.formatted())"
                     + (s.adapterBytes > 0 ? "; adapter checkpoint \(String(format: "%.2f", Double(s.adapterBytes) / 1_048_576)) MiB" : ""))
        lines.append("outputs in \(s.runDirectory): config.yaml, metrics.jsonl, curves.png, checkpoints/{latest,best}")
        lines.append("next: adaroute eval --checkpoint \(s.runDirectory)   ·   adaroute predict --checkpoint \(s.runDirectory) IMAGE… --out DIR")
        return lines.joined(separator: "\n")
    }
}

enum Validation {
    /// Validation on the config's val split with its eval settings; nil when the split does not exist.
    static func make(_ config: RunConfig) throws -> ((SegmentationModel) throws -> ValidationResult)? {
        let dataset = config.data.dataset
        guard FileManager.default.fileExists(atPath: dataset.imageFolder(split: dataset.valSplit)) else { return nil }
        let (valSet, _) = try SegmentationDataset.index(dataset, split: dataset.valSplit)
        let options = try EvalJob.inferenceOptions(config.eval)
        let transforms = config.data.pipeline.testTransforms()
        return { model in
            let result = try Evaluator(inference: Inference(model: model, options: options), transforms: transforms).run(on: valSet)
            let m = result.metrics
            return ValidationResult(mIoU: 100 * m.meanIoU, mAcc: 100 * m.meanAccuracy, aAcc: 100 * m.pixelAccuracy,
                                    table: result.confusion.table(classNames: dataset.classes))
        }
    }
}
