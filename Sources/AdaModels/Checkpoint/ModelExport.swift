// Model files:
// - full export: every parameter and buffer under the fixture naming (timm names at the root,
//   adapters.{i}.*, expert.*, head.*) in one model.safetensors — a PyTorch user loads it by name;
// - adapter checkpoint: only what the method trains (plus its buffers) in adapter_model.safetensors,
//   and the structure in adapter_config.json, as PEFT does. The frozen backbone comes from its own file.
import AdaIO
import AdaNN
import AdaTensor
import Foundation

public enum ModelFiles {
    public static let adapterWeights = "adapter_model.safetensors"
    public static let adapterConfig = "adapter_config.json"

    /// Writes the whole model (float32) to `path`, with `metadata` beside the structure.
    public static func exportFull(_ model: SegmentationModel, spec: ModelSpec, to path: String, metadata: [String: String] = [:]) throws {
        try model.save(to: path, metadata: metadata.merging(["format": "pt", "adaroute_spec": try encode(spec)]) { _, new in new })
    }

    /// The tensors an adapter checkpoint holds: trainable parameters, every buffer outside the backbone,
    /// and everything of the adapters plugged into the backbone's linears, frozen or not (PaCA's column
    /// indices; an MHR inventory frozen for MHR-z): none of it is in the backbone's own weights file.
    public static func adapterTensors(_ model: SegmentationModel) -> [(String, Tensor)] {
        var adapterParameters = Set<String>(), adapterBuffers = Set<String>()
        for (path, module) in model.backbone.namedModules() where module is LinearAdapter {
            let prefix = path.isEmpty ? "" : path + "."
            for (name, _) in module.namedParameters(prefix: prefix) { adapterParameters.insert(name) }
            for (name, _) in module.namedBuffers(prefix: prefix) { adapterBuffers.insert(name) }
        }
        let backboneBuffers = Set(model.backbone.namedBuffers().map(\.0)).subtracting(adapterBuffers)
        return model.namedParameters().filter { $0.1.requiresGrad || adapterParameters.contains($0.0) }
            + model.namedBuffers().filter { !backboneBuffers.contains($0.0) }
    }

    /// Writes adapter_model.safetensors + adapter_config.json into `directory`; returns the weights' byte size.
    @discardableResult
    public static func saveAdapter(_ model: SegmentationModel, spec: ModelSpec, to directory: String) throws -> Int {
        let dir = URL(fileURLWithPath: directory)
        let json = try encode(spec)
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "adaroute_spec": json])
        for (name, t) in adapterTensors(model) { writer.add(name, t) }
        let data = try writer.serialized()
        try AtomicFile.write(data, to: dir.appendingPathComponent(adapterWeights))
        try AtomicFile.write(Data(json.utf8), to: dir.appendingPathComponent(adapterConfig))
        return data.count
    }

    public static func encode(_ spec: ModelSpec) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return String(decoding: try encoder.encode(spec), as: UTF8.self)
    }

    public static func decodeSpec(_ json: String, source: String) throws -> ModelSpec {
        do { return try JSONDecoder().decode(ModelSpec.self, from: Data(json.utf8)) } catch {
            throw ModelFileError.badSpec(file: source, reason: "\(error)")
        }
    }

    /// Reads the spec stored in a model or adapter file (metadata key adaroute_spec).
    public static func spec(of file: SafeTensorsFile) throws -> ModelSpec {
        guard let json = file.metadata["adaroute_spec"] else {
            throw ModelFileError.badSpec(file: file.path, reason: "no adaroute_spec in __metadata__ (not written by adaroute)")
        }
        return try decodeSpec(json, source: file.path)
    }
}

public enum ModelFileError: Error, CustomStringConvertible {
    case badSpec(file: String, reason: String)
    public var description: String {
        switch self { case let .badSpec(file, reason): return "\(file): cannot read the model structure: \(reason)" }
    }
}
