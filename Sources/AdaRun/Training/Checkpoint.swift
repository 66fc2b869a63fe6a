// Checkpoints of a run directory. Each checkpoint is a folder `checkpoints/iter_NNNNNN/` written under a
// temporary name and renamed when complete; `latest` and `best` are symlinks replaced atomically (a new
// symlink renamed over the old one), so a kill -9 at any moment leaves the previous checkpoint intact.
//
// A checkpoint holds what resuming needs: the trainable tensors and buffers (adapter_model.safetensors,
// PEFT-style, with adapter_config.json), the optimizer moments, and state.json (iteration, data position,
// random streams, best score).
import AdaData
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import Foundation

public struct TrainingState: Codable, Equatable, Sendable {
    /// Optimizer steps completed.
    public var iteration: Int
    public var loaderEpoch: Int
    public var loaderIndex: Int
    /// The dropout / drop-path stream.
    public var generator: [UInt64]
    public var optimizerSteps: Int
    public var bestMIoU: Double?
    public var bestIteration: Int?
    public var trainingSeconds: Double
    /// The partial logging window (so a resumed run logs the same window means).
    public var windowLoss: Double? = nil
    public var windowCount: Int? = nil
}

public enum CheckpointError: Error, CustomStringConvertible {
    case missing(String)
    case corrupt(file: String, reason: String)
    public var description: String {
        switch self {
        case .missing(let path): return "\(path): no checkpoint found (expected checkpoints/latest inside a run directory)"
        case let .corrupt(file, reason): return "\(file): unusable checkpoint: \(reason)"
        }
    }
}

public enum Checkpoint {
    public static let optimizerFile = "optimizer.safetensors"
    public static let stateFile = "state.json"

    static func folder(_ run: String) -> URL { URL(fileURLWithPath: run).appendingPathComponent("checkpoints") }

    /// Writes checkpoint `iteration` and points `latest` (and `best` when asked) at it; keeps the newest
    /// `keep` folders plus the one `best` points to. Returns the folder and the adapter file's size in bytes.
    @discardableResult
    public static func save(run: String, model: SegmentationModel, spec: ModelSpec, optimizer: Optimizer,
                            state: TrainingState, isBest: Bool, keep: Int = 2) throws -> (URL, Int) {
        let fm = FileManager.default
        let root = folder(run)
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        let name = String(format: "iter_%06d", state.iteration)
        let final = root.appendingPathComponent(name)
        let temporary = root.appendingPathComponent(".\(name).tmp-\(getpid())")
        try? fm.removeItem(at: temporary)
        try fm.createDirectory(at: temporary, withIntermediateDirectories: true)
        let bytes = try ModelFiles.saveAdapter(model, spec: spec, to: temporary.path)
        var writer = SafeTensorsWriter(metadata: ["optimizer_steps": "\(optimizer.stepCount)"])
        for (key, t) in optimizer.stateTensors() { writer.add(key, t) }
        try writer.write(to: temporary.appendingPathComponent(optimizerFile).path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try AtomicFile.write(encoder.encode(state), to: temporary.appendingPathComponent(stateFile))
        if fm.fileExists(atPath: final.path) { try fm.removeItem(at: final) }
        try fm.moveItem(at: temporary, to: final)
        try pointLink("latest", to: name, in: root)
        if isBest { try pointLink("best", to: name, in: root) }
        try prune(root, keep: keep)
        return (final, bytes)
    }

    static func pointLink(_ link: String, to target: String, in root: URL) throws {
        let temporary = root.appendingPathComponent(".\(link).tmp-\(getpid())")
        try? FileManager.default.removeItem(at: temporary)
        try FileManager.default.createSymbolicLink(atPath: temporary.path, withDestinationPath: target)
        guard rename(temporary.path, root.appendingPathComponent(link).path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: root.appendingPathComponent(link).path])
        }
    }

    static func prune(_ root: URL, keep: Int) throws {
        let fm = FileManager.default
        let protected = Set(["latest", "best"].compactMap { try? fm.destinationOfSymbolicLink(atPath: root.appendingPathComponent($0).path) })
        let folders = try fm.contentsOfDirectory(atPath: root.path).filter { $0.hasPrefix("iter_") }.sorted()
        for old in folders.dropLast(keep) where !protected.contains(old) {
            try? fm.removeItem(at: root.appendingPathComponent(old))
        }
        for stale in try fm.contentsOfDirectory(atPath: root.path) where stale.hasPrefix(".") && stale.contains(".tmp-") {
            try? fm.removeItem(at: root.appendingPathComponent(stale)) // left by a killed run
        }
    }

    /// The checkpoint folder `latest` or `best` of a run (or `path` itself if it is a checkpoint folder).
    public static func resolve(_ path: String, which: String = "latest") throws -> URL {
        let url = URL(fileURLWithPath: path)
        if FileManager.default.fileExists(atPath: url.appendingPathComponent(ModelFiles.adapterWeights).path) { return url }
        let link = folder(path).appendingPathComponent(which)
        guard FileManager.default.fileExists(atPath: link.appendingPathComponent(ModelFiles.adapterWeights).path) else {
            throw CheckpointError.missing(path)
        }
        return link.resolvingSymlinksInPath()
    }

    public static func loadState(_ checkpoint: URL) throws -> TrainingState {
        let file = checkpoint.appendingPathComponent(stateFile)
        do { return try JSONDecoder().decode(TrainingState.self, from: Data(contentsOf: file)) } catch {
            throw CheckpointError.corrupt(file: file.path, reason: "\(error)")
        }
    }

    /// Copies the checkpoint's tensors into `model`; every tensor must match by name and shape.
    public static func loadWeights(_ checkpoint: URL, into model: SegmentationModel) throws -> LoadReport {
        let file = try SafeTensorsFile(path: checkpoint.appendingPathComponent(ModelFiles.adapterWeights).path)
        let report = try model.load(file)
        if !report.unexpected.isEmpty {
            throw CheckpointError.corrupt(file: file.path, reason: "tensors the model does not have: \(report.unexpected.prefix(5).joined(separator: ", "))")
        }
        return report
    }

    public static func loadOptimizer(_ checkpoint: URL, into optimizer: Optimizer) throws {
        let file = try SafeTensorsFile(path: checkpoint.appendingPathComponent(optimizerFile).path)
        var tensors: [String: Tensor] = [:]
        for name in file.names { tensors[name] = try file.tensor(name) }
        optimizer.loadState(tensors, stepCount: Int(file.metadata["optimizer_steps"] ?? "0") ?? 0)
    }
}
