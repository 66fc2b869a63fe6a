// Module: a node of the model tree with named parameters, buffers and children. Names are the
// checkpoint keys (timm's for the ViT: `blocks.3.attn.qkv.weight`), built from each level's local
// names, so loading and saving never need a separate mapping table.
import AdaTensor

open class Module {
    /// Training mode (dropout, drop-path, batch statistics) vs evaluation mode.
    public private(set) var isTraining = true

    public init() {}

    /// This module's own learnable tensors, by local name (e.g. "weight", "bias").
    open var localParameters: [(String, Tensor)] { [] }
    /// Non-learnable state saved with the model (running statistics, fixed indices, scales).
    open var localBuffers: [(String, Tensor)] { [] }
    /// Sub-modules, by local name (e.g. "attn", or "0", "1", … inside a list).
    open var children: [(String, Module)] { [] }

    /// Every parameter in the tree with its full dotted name, parents first. A child registered
    /// under the empty name shares its parent's prefix (an adapter plugged into a Linear puts its
    /// `lora_A` next to the Linear's `weight`, as PEFT names them).
    public func namedParameters(prefix: String = "") -> [(String, Tensor)] {
        var out = localParameters.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedParameters(prefix: Self.join(prefix, name)) }
        return out
    }

    public func namedBuffers(prefix: String = "") -> [(String, Tensor)] {
        var out = localBuffers.map { (prefix + $0.0, $0.1) }
        for (name, child) in children { out += child.namedBuffers(prefix: Self.join(prefix, name)) }
        return out
    }

    private static func join(_ prefix: String, _ name: String) -> String { name.isEmpty ? prefix : prefix + name + "." }

    /// Every module in the tree with its dotted path ("" for self).
    public func namedModules(prefix: String = "") -> [(String, Module)] {
        var out: [(String, Module)] = [(prefix, self)]
        for (name, child) in children {
            let path = name.isEmpty ? prefix : (prefix.isEmpty ? name : prefix + "." + name)
            out += child.namedModules(prefix: path)
        }
        return out
    }

    /// Parameters that will receive gradients.
    public func trainableParameters() -> [(String, Tensor)] { namedParameters().filter { $0.1.requiresGrad } }

    public func parameterCount(trainableOnly: Bool = false) -> Int {
        (trainableOnly ? trainableParameters() : namedParameters()).reduce(0) { $0 + $1.1.count }
    }

    /// Marks every parameter below this module frozen (false) or trainable (true).
    public func setTrainable(_ trainable: Bool) {
        for (_, p) in namedParameters() { p.requiresGrad = trainable }
    }

    /// Switches the whole tree between training and evaluation behaviour.
    public func setTraining(_ training: Bool) {
        isTraining = training
        for (_, child) in children { child.setTraining(training) }
    }

    /// Clears accumulated gradients of every parameter.
    public func zeroGrad() {
        for (_, p) in namedParameters() { p.grad = nil }
    }
}
