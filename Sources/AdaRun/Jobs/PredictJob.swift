// `adaroute predict`: a palette PNG mask per image at its original resolution (plus an optional colour
// overlay and per-class probabilities), for images of any size.
import AdaData
import AdaModels
import AdaTensor
import Foundation

public struct PredictOptions {
    public var outputDirectory: String
    public var overlay = false
    public var saveProbabilities = false
    public var mode: EvalMode? = nil
    public var flip: Bool? = nil
    /// Multi-dataset models: the task (by dataset name) to predict for.
    public var dataset: String? = nil
    public init(outputDirectory: String) { self.outputDirectory = outputDirectory }
}

public enum PredictJob {
    /// Expands folders into their image files (sorted); files are kept as given.
    public static func imageFiles(_ inputs: [String]) throws -> [String] {
        try inputs.flatMap { path -> [String] in
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ImageCodecError.unreadable(file: path, reason: "no such file or folder")
            }
            return isDirectory.boolValue ? try SegmentationDataset.imagePaths(in: path) : [path]
        }
    }

    /// Predicts every image; `progress(done, total, file)`. Returns the written mask paths.
    public static func run(_ loaded: LoadedModel, images: [String], options: PredictOptions,
                           progress: ((Int, Int, String) -> Void)? = nil) throws -> [String] {
        let config = loaded.config
        let (taskId, task) = try chooseTask(loaded, name: options.dataset)
        let classes = loaded.spec.taskClasses[taskId ?? 0]
        let palette = task?.dataset.resolvedPalette ?? DatasetConfig.defaultPalette(count: classes)
        let names = task?.dataset.classes ?? (0..<classes).map { "class\($0)" }
        var eval = config?.eval ?? EvalSection()
        if let mode = options.mode { eval.mode = mode }
        var inferenceOptions = try EvalJob.inferenceOptions(eval, flip: options.flip)
        inferenceOptions.taskId = taskId
        let inference = Inference(model: loaded.model, options: inferenceOptions)
        let transforms = (task?.pipeline ?? PipelineConfig()).testTransforms()
        let writer = PredictionWriter(outputDirectory: options.outputDirectory, palette: palette, classNames: names)
        let files = try imageFiles(images)
        let source = SegmentationDataset(images: files)
        var written: [String] = []
        try PackedGEMM.reusingPackedWeights { // weights are fixed while predicting: pack each layer once
            for i in 0..<source.count {
                var sample = try source.sample(at: i)
                let original = options.overlay ? try ImageCodecs.decodeImage(path: files[i]) : nil
                var generator = RandomGenerator(seed: 0) // test transforms draw nothing
                for t in transforms { try t.apply(&sample, generator: &generator) }
                let prediction = inference.predict(sample, probabilities: options.saveProbabilities)
                let stem = URL(fileURLWithPath: files[i]).deletingPathExtension().lastPathComponent
                _ = try writer.write(stem: stem, prediction: prediction.labels, width: prediction.width, height: prediction.height,
                                     image: original, probabilities: prediction.probabilities)
                written.append(writer.maskPath(stem: stem))
                progress?(i + 1, source.count, files[i])
            }
        }
        return written
    }

    /// The task to predict for: nil id for a single-task model; a multi-task model needs `--dataset NAME`.
    static func chooseTask(_ loaded: LoadedModel, name: String?) throws -> (id: Int?, task: TaskData?) {
        let tasks = loaded.config?.data.tasks
        let heads = loaded.spec.tasks
        guard !heads.isEmpty else {
            if let name, let only = tasks?.first?.name, name != only {
                throw ConfigError.badOption(option: "--dataset", reason: "the model has one dataset ('\(only)'), not '\(name)'")
            }
            return (nil, tasks?.first)
        }
        let known = heads.map(\.name).joined(separator: ", ")
        guard let name else {
            throw ConfigError.badOption(option: "--dataset", reason: "the model has one head per dataset (\(known)): choose one with --dataset NAME")
        }
        guard let id = loaded.spec.taskIndex(named: name) else {
            throw ConfigError.badOption(option: "--dataset", reason: "no dataset '\(name)' (this model has: \(known))")
        }
        return (id, tasks?.first { $0.name == name })
    }
}
