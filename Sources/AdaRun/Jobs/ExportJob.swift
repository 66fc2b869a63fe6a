// `adaroute export`: the whole model as one safetensors file in the reference naming, with the structure
// (adaroute_spec) and, when known, the run's resolved configuration (adaroute_config: classes, palette,
// test pipeline, eval settings) in its metadata — so `eval`/`predict` on the file alone behave as on the run.
import AdaModels
import Foundation

public enum ExportJob {
    /// Writes `loaded` to `path`; `merge` folds LoRA into the weights. Returns the file size in bytes.
    @discardableResult
    public static func run(_ loaded: LoadedModel, merge: Bool, to path: String) throws -> Int {
        var spec = loaded.spec
        // PaCA always exports merged: its trained columns live in the weights, no adapter is left.
        if spec.adapter.method == .paca { _ = PaCA.merge(loaded.model.backbone) }
        if (merge && spec.adapter.method == .lora) || spec.adapter.method == .paca {
            spec.adapter.method = .linear // nothing left to inject on rebuild
        }
        let config = try loaded.config.map { try ConfigEncoder.encode($0).yaml() }
        try ModelFiles.exportFull(loaded.model, spec: spec, to: path, metadata: config.map { [ModelLoading.configMetadataKey: $0] } ?? [:])
        return (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }
}
