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
    /// Validation on each dataset's val split with the eval settings; nil when no val split exists. Several
    /// datasets report each one's mIoU and their mean (which picks the best checkpoint).
    static func make(_ config: RunConfig) throws -> ((SegmentationModel) throws -> ValidationResult)? {
        let tasks = config.data.tasks
        var checks: [(index: Int, task: TaskData, source: SegmentationDataset)] = []
        for (index, task) in tasks.enumerated() {
            guard FileManager.default.fileExists(atPath: task.dataset.imageFolder(split: task.dataset.valSplit)) else { continue }
            checks.append((index, task, try SegmentationDataset.index(task.dataset, split: task.dataset.valSplit).0))
        }
        guard !checks.isEmpty else { return nil }
        let options = try EvalJob.inferenceOptions(config.eval)
        let multi = tasks.count > 1
        return { model in
            var results: [(String, SegmentationMetrics, String)] = []
            for check in checks {
                let result = try EvalJob.evaluate(model, task: check.task, taskIndex: check.index, on: check.source, options: options)
                results.append((check.task.name, result.metrics, result.confusion.table(classNames: check.task.dataset.classes)))
            }
            func mean(_ value: (SegmentationMetrics) -> Double) -> Double { 100 * results.map { value($0.1) }.reduce(0, +) / Double(results.count) }
            let table = multi ? results.map { "[\($0.0)] mIoU \(String(format: "%.2f", 100 * $0.1.meanIoU))\n\($0.2)" }.joined(separator: "\n") : results[0].2
            return ValidationResult(mIoU: mean(\.meanIoU), mAcc: mean(\.meanAccuracy), aAcc: mean(\.pixelAccuracy), table: table,
                                    perDataset: multi ? Dictionary(uniqueKeysWithValues: results.map { ($0.0, 100 * $0.1.meanIoU) }) : nil)
        }
    }
}
