// `train --init-from RUN_DIR`: a new run starts from another run's adapters (MHR's transfer of a
// multi-dataset skill inventory to a new task, shared/specs/mhr.md). Only adapter tensors are copied —
// never heads (the new task has its own label space) and never routing logits (the new task starts from
// one row U(−1e-3, 1e-3), as the freshly built model already has). The frozen backbone must be the one the
// source was trained on, which is checked tensor by tensor.
import AdaModels
import AdaNN
import AdaTensor
import Foundation

public enum RunInitializationError: Error, CustomStringConvertible {
    case incompatible(source: String, reason: String)
    public var description: String {
        switch self { case let .incompatible(source, reason): return "--init-from \(source): \(reason)" }
    }
}

public enum RunInitialization {
    /// Copies the source run's adapter tensors into `model` (built from the new config); MHR-μ first
    /// collapses the source's inventories into LoRA factors. Returns a one-line summary.
    public static func copyAdapters(from source: String, mode: InitMode, into model: SegmentationModel,
                                    method: AdapterMethodKind) throws -> String {
        func fail(_ reason: String) -> RunInitializationError { .incompatible(source: source, reason: reason) }
        let loaded = try ModelLoading.load(checkpoint: source, config: nil, merge: false)
        let from = loaded.model
        if mode != .full && loaded.spec.adapter.method != .mhr {
            throw fail("\(mode.rawValue) needs a run trained with adapter.method mhr, this one used \(loaded.spec.adapter.method.rawValue)")
        }
        if mode == .mhrMu { MHR.collapseToLoRA(from.backbone) }

        // The same frozen backbone (weights file, or the seeded random initialisation and image size).
        let sourceTensors = Dictionary(from.namedParameters() + from.namedBuffers(), uniquingKeysWith: { a, _ in a })
        let adapterTensors = ModelFiles.adapterTensors(model)
        let adapterNames = Set(adapterTensors.map(\.0))
        for (name, tensor) in model.backbone.namedParameters() + model.backbone.namedBuffers() where !adapterNames.contains(name) {
            guard let theirs = sourceTensors[name], theirs.shape == tensor.shape,
                  memcmp(theirs.data, tensor.data, tensor.count * MemoryLayout<Float>.size) == 0 else {
                throw fail("the frozen backbone differs from the source run's at \(name): use the same model.backbone, model.pretrained, "
                           + "model.image_size and (for a random backbone) train.seed as that run")
            }
        }

        func isHead(_ name: String) -> Bool { ["head.", "heads.", "aux_head."].contains { name.hasPrefix($0) } }
        var copied = 0, values = 0, missing: [String] = []
        for (name, tensor) in adapterTensors where !isHead(name) && !name.hasSuffix("module_logits") {
            guard let theirs = sourceTensors[name] else { missing.append(name); continue }
            guard theirs.shape == tensor.shape else {
                throw fail("\(name) is \(theirs.shape) there but \(tensor.shape) here: adapter.\(loaded.spec.adapter.method.rawValue) settings must match the source run's")
            }
            Autograd.withNoGrad { tensor.assign(theirs) }
            copied += 1
            values += tensor.count
        }
        if !missing.isEmpty {
            throw fail("it has no \(missing.prefix(3).joined(separator: ", "))\(missing.count > 3 ? " (and \(missing.count - 3) more)" : ""): "
                       + "the source used adapter.method \(loaded.spec.adapter.method.rawValue), this run \(method.rawValue)")
        }
        return "init: \(copied) adapter tensors (\(values.formatted()) values) from \(loaded.description), mode \(mode.rawValue)"
            + (mode == .mhrMu ? " (each inventory collapsed into one LoRA)" : "") + "; new head"
            + (method == .mhr ? ", routing restarted at one row U(±1e-3)" : "")
    }

    /// MHR-z trains only the routing logits and the head: the inventories stay frozen (on resume too).
    public static func freeze(for mode: InitMode, _ model: SegmentationModel) {
        guard mode == .mhrZ else { return }
        for (_, _, adapter) in MHR.adapters(in: model.backbone) {
            adapter.loraA.requiresGrad = false
            adapter.loraB.requiresGrad = false
        }
    }
}
