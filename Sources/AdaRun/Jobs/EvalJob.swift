// `adaroute eval`: metrics of a checkpoint on a split (mmseg definitions), as a table and JSON.
import AdaData
import AdaModels
import Foundation

public struct EvalReport {
    public var result: EvaluationResult
    public var classNames: [String]
    public var jsonPath: String?
    public var text: String
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

    public static func run(_ loaded: LoadedModel, dataRoot: String?, split: String?, mode: EvalMode?, flip: Bool?,
                           jsonOut: String?, progress: ((Int, Int) -> Void)? = nil) throws -> EvalReport {
        guard var config = loaded.config else {
            throw ConfigError.unreadable(file: "--config", reason: "evaluation needs the dataset settings: pass --config")
        }
        if let dataRoot { config.data.dataset.root = dataRoot }
        if let mode { config.eval.mode = mode }
        let dataset = config.data.dataset
        guard dataset.classes.count == loaded.spec.classes else {
            throw ConfigError.invalid(location: "data", path: "data.classes",
                                      reason: "\(dataset.classes.count) classes, but the checkpoint was trained for \(loaded.spec.classes)")
        }
        let splitName = split ?? config.eval.split ?? dataset.valSplit
        let (source, index) = try SegmentationDataset.index(dataset, split: splitName)
        let inference = Inference(model: loaded.model, options: try inferenceOptions(config.eval, flip: flip))
        let result = try Evaluator(inference: inference, transforms: config.data.pipeline.testTransforms()).run(on: source, progress: progress)
        var text = "\(loaded.description) on \(index.imageFolder) (\(result.images) images, \(config.eval.mode.rawValue)"
            + "\((flip ?? config.eval.flip) ? " + flip" : ""), \(String(format: "%.2f", result.imagesPerSecond)) images/s)\n"
        text += result.confusion.table(classNames: dataset.classes)
        var written: String?
        if let jsonOut {
            let url = URL(fileURLWithPath: jsonOut)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try result.confusion.json(classNames: dataset.classes).jsonData().write(to: url, options: .atomic)
            written = jsonOut
            text += "\nmetrics written to \(jsonOut)"
        }
        return EvalReport(result: result, classNames: dataset.classes, jsonPath: written, text: text)
    }
}
