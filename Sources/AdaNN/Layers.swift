// The basic layers, named as PyTorch/timm name their tensors (`weight`, `bias`), with PyTorch's default
// initialisation so a model built from scratch starts where PyTorch's would.
import AdaTensor

/// Something that plugs into a Linear and changes what it computes (LoRA, MHR routed LoRA, PaCA).
/// Its parameters are named next to the Linear's own (`…qkv.lora_A`).
public protocol LinearAdapter: Module {
    /// The adapted output for input x [..., in].
    func forward(_ x: Tensor, base: Linear, context: ForwardContext) -> Tensor
}

/// y = x·Wᵀ + b. Weight [out, in], bias [out].
public final class Linear: Module {
    public var weight: Tensor
    public var bias: Tensor?
    public var adapter: LinearAdapter?

    public var inFeatures: Int { weight.shape[1] }
    public var outFeatures: Int { weight.shape[0] }

    /// PyTorch nn.Linear init: weight kaiming_uniform(a=√5) = U(±1/√in), bias U(±1/√in).
    public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout RandomGenerator) {
        weight = Tensor.kaimingUniform([outFeatures, inFeatures], fanIn: inFeatures, using: &generator, requiresGrad: true)
        let bound = 1 / Float(inFeatures).squareRoot()
        self.bias = bias ? Tensor.uniform([outFeatures], low: -bound, high: bound, using: &generator, requiresGrad: true) : nil
    }

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = weight
        self.bias = bias
    }

    public override var localParameters: [(String, Tensor)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    public override var children: [(String, Module)] { adapter.map { [("", $0)] } ?? [] }

    /// The plain affine map, ignoring any adapter.
    public func base(_ x: Tensor) -> Tensor { x.linear(weight, bias: bias) }

    /// self(x), or residual + self(x) — fused into the GEMM's output when no adapter wraps this layer.
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, context: ForwardContext) -> Tensor {
        guard let adapter else { return x.linear(weight, bias: bias, residual: residual) }
        let y = adapter.forward(x, base: self, context: context)
        return residual.map { $0 + y } ?? y
    }
}

/// LayerNorm over the last axis with learnable weight and bias (init 1, 0).
public final class LayerNorm: Module {
    public var weight: Tensor
    public var bias: Tensor
    public let eps: Float

    public init(_ features: Int, eps: Float) {
        weight = Tensor.ones([features], requiresGrad: true)
        bias = Tensor.zeros([features], requiresGrad: true)
        self.eps = eps
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ x: Tensor) -> Tensor { x.layerNorm(weight: weight, bias: bias, eps: eps) }
}
