// One training run: model + data from the config, the optimisation loop (warm-up + decay, gradient
// accumulation and clipping), periodic validation, checkpoints, metrics log and curves — and exact
// resumption from the latest checkpoint after any interruption (same seed and thread count ⇒ the same
// loss curve as an uninterrupted run).
import AdaData
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import Foundation

public struct ValidationResult: Sendable {
    /// Of a multi-dataset run: the mean over its datasets (which picks the best checkpoint).
    public var mIoU: Double, mAcc: Double, aAcc: Double
    /// Per-class table for the log.
    public var table: String
    /// Multi-dataset runs: each dataset's mIoU by name.
    public var perDataset: [String: Double]?
    public init(mIoU: Double, mAcc: Double, aAcc: Double, table: String, perDataset: [String: Double]? = nil) {
        self.mIoU = mIoU; self.mAcc = mAcc; self.aAcc = aAcc; self.table = table; self.perDataset = perDataset
    }
}

public enum TrainingError: Error, CustomStringConvertible {
    case nonFiniteLoss(iteration: Int, value: Float, checkpoint: String?)
    case runDirectoryInUse(String)
    case cannotResume(String)

    public var description: String {
        switch self {
        case let .nonFiniteLoss(iteration, value, checkpoint):
            return "training stopped: the loss became \(value) at iteration \(iteration) (lower train.lr, enable train.grad_clip, or check the data); "
                + (checkpoint.map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written yet")
        case .runDirectoryInUse(let dir):
            return "\(dir) already holds a run (config.yaml exists): pass --resume to continue it, or choose another output.dir"
        case .cannotResume(let reason): return "cannot resume: \(reason)"
        }
    }
}

public struct TrainingSummary: Sendable {
    public var runDirectory: String
    public var iterations: Int
    public var lastLoss: Double
    public var bestMIoU: Double?
    public var bestIteration: Int?
    public var imagesPerSecond: Double
    public var adapterBytes: Int
    public var trainableParameters: Int
    public var totalParameters: Int
}

public final class Trainer {
    public let config: RunConfig
    public let runDirectory: String
    let resolvedYAML: String
    /// Validation on the val split (set by the caller; nil = no validation).
    public var validator: ((SegmentationModel) throws -> ValidationResult)?
    /// Receives the model after setup (tests use it to inspect weights).
    public var onSetup: ((SegmentationModel) -> Void)?
    /// Stop right after this many optimizer steps in this process, writing nothing more — as if the
    /// process were killed there (tests simulate interruptions with it).
    public var stopAfter: Int?
    let progress: ProgressReporter
    /// A resumed run whose settings were changed with --set saves them, so the next resume agrees.
    public var rewriteConfigOnResume = false

    public init(loaded: LoadedConfig, runDirectory: String, interactive: Bool? = nil) throws {
        config = loaded.config
        self.runDirectory = runDirectory
        resolvedYAML = try loaded.resolvedYAML()
        let (total, every) = (loaded.config.train.iterations, loaded.config.train.logEvery)
        progress = interactive.map { ProgressReporter(total: total, every: every, interactive: $0) }
            ?? ProgressReporter(total: total, every: every)
    }

    public private(set) var model: SegmentationModel?

    public func run(resume: Bool) throws -> TrainingSummary {
        let train = config.train
        Runtime.setThreads(train.threads ?? Runtime.defaultThreads)
        let fm = FileManager.default
        let run = URL(fileURLWithPath: runDirectory)
        let configFile = run.appendingPathComponent("config.yaml")
        if !resume && fm.fileExists(atPath: configFile.path) { throw TrainingError.runDirectoryInUse(runDirectory) }

        // Model
        let spec = try config.modelSpec()
        let model = spec.build(seed: UInt64(train.seed))
        self.model = model
        if let pretrained = config.model.pretrained {
            let report = try model.backbone.loadPretrained(path: pretrained)
            progress.message("backbone: \(pretrained): \(report)" + (report.notes.isEmpty ? "" : " (\(report.notes.joined(separator: "; ")))"))
        } else {
            progress.message("""
                WARNING: no model.pretrained weights: the ViT backbone starts from RANDOM initialisation. \
                Adapters on a random frozen backbone learn far less than on pretrained weights — see README \
                ("Pretrained weights") to download a timm model.safetensors and set model.pretrained.
                """)
        }
        if !resume, let source = config.initialization.from {
            progress.message(try RunInitialization.copyAdapters(from: source, mode: config.initialization.mode, into: model,
                                                                method: spec.adapter.method))
        }
        RunInitialization.freeze(for: config.initialization.mode, model)
        let trainable = model.trainableParameters()
        progress.message("model: \(config.model.backbone) + \(spec.adapter.method.rawValue) + \(spec.head.kind.rawValue) head, "
                         + "\(model.parameterCount(trainableOnly: true).formatted()) trainable of \(model.parameterCount().formatted()) parameters")
        let routing = spec.adapter.method == .mhr
            ? (names: Set(MHR.routingParameters(model).map(\.0)), learningRate: spec.adapter.mhr.routingLr,
               weightDecay: spec.adapter.mhr.routingWeightDecay)
            : nil
        let optimizer = ParameterGroups.optimizer(for: train, parameters: trainable, routing: routing)
        let schedule = LearningRateSchedule(train: train)

        // Data: one dataset, or several mixed by weight with a task id per sample
        let tasks = config.data.tasks
        var sources: [any SampleSource] = []
        for task in tasks {
            let (set, report) = try SegmentationDataset.index(task.dataset, split: task.dataset.trainSplit)
            progress.message("data\(tasks.count > 1 ? " [\(task.name)]" : ""): \(report.description.split(separator: "\n").first ?? "")")
            sources.append(set)
        }
        let trainSet: any SampleSource = tasks.count == 1 ? sources[0] : MixedSource(sources: sources, weights: tasks.map(\.weight))
        let transforms: [any Transform] = tasks.count == 1 ? tasks[0].pipeline.trainTransforms()
            : [PerTaskTransforms(tasks.map { $0.pipeline.trainTransforms() })]
        if let mixed = trainSet as? MixedSource {
            progress.message("mixing: " + zip(tasks, mixed.slots).map { "\($0.name) \($1)" }.joined(separator: ", ") + " samples per epoch")
        }

        // Everything the run needs exists: only now does the directory become a run.
        try fm.createDirectory(at: run, withIntermediateDirectories: true)
        if !resume || rewriteConfigOnResume { try AtomicFile.write(Data(resolvedYAML.utf8), to: configFile) }

        // State: fresh or from the latest checkpoint
        var state = TrainingState(iteration: 0, loaderEpoch: 0, loaderIndex: 0,
                                  generator: RandomGenerator(seed: UInt64(train.seed) &+ 0x5eed).stateWords,
                                  optimizerSteps: 0, bestMIoU: nil, bestIteration: nil, trainingSeconds: 0)
        var windowLoss = 0.0, windowCount = 0
        if resume {
            let checkpoint: URL
            do { checkpoint = try Checkpoint.resolve(runDirectory) } catch {
                throw TrainingError.cannotResume("\(error)")
            }
            state = try Checkpoint.loadState(checkpoint)
            _ = try Checkpoint.loadWeights(checkpoint, into: model)
            try Checkpoint.loadOptimizer(checkpoint, into: optimizer)
            windowLoss = state.windowLoss ?? 0
            windowCount = state.windowCount ?? 0
            progress.message("resuming \(runDirectory) from iteration \(state.iteration) (\(checkpoint.lastPathComponent))")
            if state.iteration >= train.iterations {
                progress.message("the run is already complete (\(state.iteration) of \(train.iterations) iterations): "
                                 + "add --set train.iterations=N with N > \(state.iteration) to train further")
            }
        }
        self.onSetup?(model)
        let log = try MetricsLog(url: run.appendingPathComponent("metrics.jsonl"), keepThrough: resume ? state.iteration : nil)
        if !resume && !log.records.isEmpty { throw TrainingError.runDirectoryInUse(runDirectory) }

        let loader = DataLoader(source: trainSet, transforms: transforms, batchSize: train.batchSize,
                                shuffle: true, dropLast: true, seed: UInt64(train.seed), workers: train.workers ?? Runtime.threads,
                                startEpoch: state.loaderEpoch, startIndex: state.loaderIndex)
        defer { loader.stop() }
        let context = ForwardContext(generator: RandomGenerator(stateWords: state.generator))
        model.setTraining(true)

        var lastLoss = Double.nan, adapterBytes = 0, stepsHere = 0
        var windowStart = Date().timeIntervalSince1970, windowImages = 0
        let startSeconds = state.trainingSeconds, processStart = Date().timeIntervalSince1970
        var latestCheckpoint: String? = resume ? (try? Checkpoint.resolve(runDirectory).path) : nil
        while state.iteration < train.iterations {
            let lr = schedule.rate(at: state.iteration)
            var stepLoss = 0.0
            for _ in 0..<train.accumulate {
                let batch = try loader.next()
                if tasks.count > 1 { context.taskIds = batch.tasks }
                let (loss, _) = try model.loss(batch.images, labels: batch.labels, context: context)
                let value = loss.item
                guard value.isFinite else {
                    throw TrainingError.nonFiniteLoss(iteration: state.iteration + 1, value: value, checkpoint: latestCheckpoint)
                }
                (train.accumulate > 1 ? loss * (1 / Float(train.accumulate)) : loss).backward()
                stepLoss += Double(value) / Double(train.accumulate)
                windowImages += batch.names.count
            }
            let gradNorm = ParameterGroups.clipGradients(trainable, maxNorm: train.gradClip)
            optimizer.step(learningRate: Float(lr))
            model.zeroGrad()
            state.iteration += 1
            stepsHere += 1
            lastLoss = stepLoss
            windowLoss += stepLoss
            windowCount += 1

            let now = Date().timeIntervalSince1970
            let elapsed = startSeconds + now - processStart
            let rate = Double(windowImages) / max(now - windowStart, 1e-9)
            let secondsLeft = elapsed / Double(state.iteration) * Double(train.iterations - state.iteration)
            progress.update(iteration: state.iteration, loss: stepLoss, lr: lr, imagesPerSecond: rate, secondsLeft: secondsLeft)
            if state.iteration % train.logEvery == 0 || state.iteration == train.iterations {
                try log.append(LogRecord(kind: "train", iteration: state.iteration, loss: windowLoss / Double(windowCount), lr: lr,
                                         imagesPerSecond: rate, gradNorm: gradNorm))
                windowLoss = 0; windowCount = 0; windowStart = now; windowImages = 0
            }

            let last = state.iteration == train.iterations
            var isBest = false
            if let validator, (train.evalEvery > 0 && state.iteration % train.evalEvery == 0) || last {
                model.setTraining(false)
                let result = try validator(model)
                model.setTraining(true)
                try log.append(LogRecord(kind: "val", iteration: state.iteration, mIoU: result.mIoU, mAcc: result.mAcc, aAcc: result.aAcc,
                                         perDataset: result.perDataset))
                if state.bestMIoU.map({ result.mIoU > $0 }) ?? true {
                    state.bestMIoU = result.mIoU
                    state.bestIteration = state.iteration
                    isBest = true
                }
                progress.message(String(format: "iter %d: val mIoU %.2f  mAcc %.2f  aAcc %.2f%@", state.iteration, result.mIoU, result.mAcc,
                                        result.aAcc, isBest ? "  (best)" : "") + "\n" + result.table)
            }
            if let stopAfter, stepsHere >= stopAfter { break }
            if (train.checkpointEvery > 0 && state.iteration % train.checkpointEvery == 0) || last || isBest {
                state.loaderEpoch = loader.position.epoch
                state.loaderIndex = loader.position.index
                state.generator = context.generator.stateWords
                state.optimizerSteps = optimizer.stepCount
                state.trainingSeconds = startSeconds + Date().timeIntervalSince1970 - processStart
                state.windowLoss = windowLoss
                state.windowCount = windowCount
                let (folder, bytes) = try Checkpoint.save(run: runDirectory, model: model, spec: spec, optimizer: optimizer,
                                                          state: state, isBest: isBest)
                latestCheckpoint = folder.path
                adapterBytes = bytes
                try writeCurves(log)
            }
        }
        progress.finish()
        let seconds = startSeconds + Date().timeIntervalSince1970 - processStart
        let images = Double(state.iteration * train.batchSize * train.accumulate)
        return TrainingSummary(runDirectory: runDirectory, iterations: state.iteration, lastLoss: lastLoss,
                               bestMIoU: state.bestMIoU, bestIteration: state.bestIteration,
                               imagesPerSecond: seconds > 0 ? images / seconds : 0, adapterBytes: adapterBytes,
                               trainableParameters: model.parameterCount(trainableOnly: true), totalParameters: model.parameterCount())
    }

    /// curves.png: training loss and validation mIoU over iterations.
    func writeCurves(_ log: MetricsLog) throws {
        let loss = log.records.filter { $0.kind == "train" }.compactMap { r in r.loss.map { (Double(r.iteration), $0) } }
        let miou = log.records.filter { $0.kind == "val" }.compactMap { r in r.mIoU.map { (Double(r.iteration), $0) } }
        try RunCurves.write(loss: loss, mIoU: miou, to: URL(fileURLWithPath: runDirectory).appendingPathComponent("curves.png").path)
    }
}
