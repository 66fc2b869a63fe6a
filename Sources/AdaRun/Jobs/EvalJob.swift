// `adaroute eval`: metrics of a checkpoint on a split (mmseg definitions), as a table and JSON.
import AdaData
import AdaModels
import Foundation

public struct EvalReport {
    /// One entry per evaluated dataset (several for a multi-dataset model), in task order.
    public var datasets: [DatasetEvaluation]
    public var text: String

    public struct DatasetEvaluation {
        public var name: String
        public var result: EvaluationResult
        public var classNames: [String]
        public var jsonPath: String?
    }

    /// The first (for a single-dataset model, the only) dataset's result.
    public var result: EvaluationResult { datasets[0].result }
    public var classNames: [String] { datasets[0].classNames }
    public var jsonPath: String? { datasets[0].jsonPath }
}

public enum EvalJob {
    static func inferenceOptions(_ eval: EvalSection, flip: Bool? = nil) throws -> InferenceOptions {
        let mode: InferenceMode
        switch eval.mode {
        case .whole: mode = .whole
        case .slide:
            guard eval.crop.count == 2, eval.stride.count == 2, eval.stride[0] <= eval.crop[0], eval.stride[1] <= eval.crop[1] else {
                throw ConfigError.invalid(location: "eval", path: "eval.stride", reason: "expected [h, w] crop and stride with stride ≤ crop, got crop \(eval.crop) stride \(eval.stride)")
            }
            mode = .slide(SlideWindows(crop: (eval.crop[0], eval.crop[1]), stride: (eval.stride[0], eval.stride[1])))
        }
        return InferenceOptions(mode: mode, flip: flip ?? eval.flip)
    }

    /// One dataset's pass with its test pipeline; a model with one head per dataset uses head `taskIndex`.
    static func evaluate(_ model: SegmentationModel, task: TaskData, taskIndex: Int, on source: any SampleSource,
                         options: InferenceOptions, progress: ((Int, Int) -> Void)? = nil) throws -> EvaluationResult {
        var options = options
        options.taskId = model.heads.count > 1 ? taskIndex : nil
        return try Evaluator(inference: Inference(model: model, options: options), transforms: task.pipeline.testTransforms())
            .run(on: source, progress: progress)
    }

    /// Evaluates every dataset of the model's config (or only `dataset`, by name) on `split` (default:
    /// eval.split, else each dataset's val split). `dataRoot` replaces the dataset folder (one dataset only).
    /// JSON: `jsonOut` for one dataset; with several, one file per dataset (`val.json` → `val.<name>.json`).
    public static func run(_ loaded: LoadedModel, dataRoot: String?, split: String?, mode: EvalMode?, flip: Bool?,
                           jsonOut: String?, dataset: String? = nil, progress: ((Int, Int) -> Void)? = nil) throws -> EvalReport {
        guard var config = loaded.config else {
            throw ConfigError.unreadable(file: "--config", reason: "evaluation needs the dataset settings: pass --config")
        }
        if let mode { config.eval.mode = mode }
        var tasks = Array(config.data.tasks.enumerated())
        guard tasks.count == loaded.spec.taskClasses.count else {
            throw ConfigError.invalid(location: "data", path: "data.datasets",
                                      reason: "\(tasks.count) datasets, but the checkpoint has \(loaded.spec.taskClasses.count) heads")
        }
        if let dataset {
            guard let chosen = tasks.first(where: { $0.element.name == dataset }) else {
                throw ConfigError.badOption(option: "--dataset", reason: "no dataset '\(dataset)' (this model has: \(tasks.map(\.element.name).joined(separator: ", ")))")
            }
            tasks = [chosen]
        }
        if let dataRoot {
            guard tasks.count == 1 else {
                throw ConfigError.badOption(option: "--data", reason: "the model has \(tasks.count) datasets: name the one --data replaces with --dataset NAME")
            }
            tasks[0].element.dataset.root = dataRoot
        }
        let options = try inferenceOptions(config.eval, flip: flip)
        var reports: [EvalReport.DatasetEvaluation] = []
        var text = ""
        for (taskIndex, task) in tasks {
            let classes = loaded.spec.taskClasses[taskIndex]
            guard task.dataset.classes.count == classes else {
                throw ConfigError.invalid(location: "data", path: "data.classes",
                                          reason: "\(task.name): \(task.dataset.classes.count) classes, but the checkpoint's head was trained for \(classes)")
            }
            let splitName = split ?? config.eval.split ?? task.dataset.valSplit
            let (source, index) = try SegmentationDataset.index(task.dataset, split: splitName)
            let result = try evaluate(loaded.model, task: task, taskIndex: taskIndex, on: source, options: options, progress: progress)
            if !text.isEmpty { text += "\n\n" }
            text += "\(loaded.description)\(tasks.count > 1 || loaded.spec.taskClasses.count > 1 ? " [\(task.name)]" : "") on \(index.imageFolder) (\(result.images) images, \(config.eval.mode.rawValue)"
                + "\((flip ?? config.eval.flip) ? " + flip" : ""), \(String(format: "%.2f", result.imagesPerSecond)) images/s)\n"
            text += result.confusion.table(classNames: task.dataset.classes)
            var written: String?
            if let jsonOut {
                let path = loaded.spec.taskClasses.count > 1 ? (jsonOut as NSString).deletingPathExtension + ".\(task.name).json" : jsonOut
                let url = URL(fileURLWithPath: path)
                try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
                try result.confusion.json(classNames: task.dataset.classes).jsonData().write(to: url, options: .atomic)
                written = path
                text += "\nmetrics written to \(path)"
            }
            reports.append(.init(name: task.name, result: result, classNames: task.dataset.classes, jsonPath: written))
        }
        if reports.count > 1 {
            let mious = reports.map { 100 * $0.result.metrics.meanIoU }
            text += "\n\nmIoU per dataset: " + zip(reports, mious).map { String(format: "%@ %.2f", $0.name, $1) }.joined(separator: " · ")
                + String(format: " · mean %.2f", mious.reduce(0, +) / Double(mious.count))
        }
        return EvalReport(datasets: reports, text: text)
    }
}
