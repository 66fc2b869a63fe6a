// Turning a `--checkpoint` argument into a ready model. Three forms are accepted:
// - a run directory (its config.yaml + checkpoints/best, else checkpoints/latest);
// - an adapter checkpoint folder (adapter_model.safetensors + adapter_config.json) with --config
//   (for the backbone weights, data and pipeline settings);
// - a full-model export (`adaroute export`, model.safetensors with the structure in its metadata),
//   with or without --config.
import AdaData
import AdaIO
import AdaModels
import AdaNN
import Foundation

public struct LoadedModel {
    public var model: SegmentationModel
    public var spec: ModelSpec
    /// The run configuration (data, pipeline, eval settings) when one is known.
    public var config: RunConfig?
    public var description: String
}

public enum ModelLoading {
    /// Metadata key of the resolved run configuration in a full export.
    public static let configMetadataKey = "adaroute_config"

    /// - merge: fold LoRA and PaCA into the frozen weights (inference); false keeps the trained structure (export).
    public static func load(checkpoint: String, config configPath: String?, overrides: [String] = [], which: String? = nil,
                            merge: Bool = true) throws -> LoadedModel {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: checkpoint, isDirectory: &isDirectory) else {
            throw CheckpointError.missing(checkpoint)
        }
        if !isDirectory.boolValue {
            // A full export.
            let file = try SafeTensorsFile(path: checkpoint)
            let spec = try ModelFiles.spec(of: file)
            let model = spec.build(seed: 0)
            let report = try model.load(file)
            guard report.missing.isEmpty else {
                throw CheckpointError.corrupt(file: checkpoint, reason: "missing \(report.missing.count) tensors, e.g. \(report.missing.prefix(3).joined(separator: ", "))")
            }
            // --config wins; else the configuration the export carries (classes, palette, test pipeline).
            var config = try configPath.map { try ConfigLoader.load(path: $0, overrides: overrides).config }
            if config == nil, let yaml = file.metadata[configMetadataKey] {
                config = try ConfigLoader.decode(yaml: yaml, file: "\(checkpoint) (\(configMetadataKey))")
            }
            return LoadedModel(model: model, spec: spec, config: config, description: "full model \(checkpoint)")
        }
        let runConfig = URL(fileURLWithPath: checkpoint).appendingPathComponent("config.yaml").path
        let path = configPath ?? (fm.fileExists(atPath: runConfig) ? runConfig : nil)
        guard let path else {
            throw ConfigError.unreadable(file: runConfig, reason: "\(checkpoint) is not a run directory: pass --config with the run's configuration")
        }
        let config = try ConfigLoader.load(path: path, overrides: overrides).config
        let folder: URL
        if let which { folder = try Checkpoint.resolve(checkpoint, which: which) }
        else if let best = try? Checkpoint.resolve(checkpoint, which: "best") { folder = best }
        else { folder = try Checkpoint.resolve(checkpoint, which: "latest") }
        let json = try String(contentsOf: folder.appendingPathComponent(ModelFiles.adapterConfig), encoding: .utf8)
        let spec = try ModelFiles.decodeSpec(json, source: folder.appendingPathComponent(ModelFiles.adapterConfig).path)
        let model = spec.build(seed: UInt64(config.train.seed))
        if let pretrained = config.model.pretrained { _ = try model.backbone.loadPretrained(path: pretrained) }
        _ = try Checkpoint.loadWeights(folder, into: model)
        if merge { mergeForInference(model) }
        return LoadedModel(model: model, spec: spec, config: config, description: "\(folder.path)")
    }

    /// Folds mergeable adapters (LoRA, PaCA) into the frozen weights once: same outputs, no adapter cost.
    static func mergeForInference(_ model: SegmentationModel) {
        LoRA.mergeAll(in: model)
        _ = PaCA.merge(model.backbone)
    }
}
