// Depthwise k×k convolution layer on channels-last maps, PyTorch Conv2d(C, C, k, padding k/2,
// groups=C) names and init: weight [C, 1, k, k] kaiming_uniform(a=√5) with fan_in k², bias [C].
import AdaTensor

public final class DepthwiseConv: Module {
    public let weight: Tensor
    public let bias: Tensor?

    /// Bias starts at 0 (AdaRoute's init); pass `zeroBias: false` for PyTorch's U(±1/k).
    public init(channels: Int, kernel: Int, bias: Bool = true, zeroBias: Bool = true, generator: inout RandomGenerator) {
        weight = Tensor.kaimingUniform([channels, 1, kernel, kernel], fanIn: kernel * kernel, using: &generator, requiresGrad: true)
        let bound = 1 / Float(kernel)
        self.bias = bias ? (zeroBias ? Tensor.zeros([channels], requiresGrad: true)
                            : Tensor.uniform([channels], low: -bound, high: bound, using: &generator, requiresGrad: true)) : nil
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// x [B, H, W, C] → [B, H, W, C] (zero padding k/2).
    public func callAsFunction(_ x: Tensor) -> Tensor { x.depthwiseConv2d(weight: weight, bias: bias) }
}
