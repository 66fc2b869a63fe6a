// Dense 2-D convolution layers on channels-last maps, with PyTorch's names and weight layouts so
// mmseg/DEIMv2 checkpoints load as they are: Conv2d weight [Cout, Cin, k, k], ConvTranspose2d weight
// [Cin, Cout, 2, 2], bias [Cout].
//
// Legend: x [B, H, W, Cin] → y [B, H', W', Cout].
import AdaTensor

public final class Conv2d: Module {
    public let weight: Tensor
    public let bias: Tensor?
    public let stride: Int
    public let padding: Int

    public var inChannels: Int { weight.shape[1] }
    public var outChannels: Int { weight.shape[0] }
    public var kernel: Int { weight.shape[2] }

    /// How a fresh layer draws its weight.
    public enum Initialization {
        /// PyTorch's nn.Conv2d default: kaiming_uniform(a=√5) = U(±1/√fan_in), bias U(±1/√fan_in).
        case pytorchDefault
        /// mmcv ConvModule's kaiming_init: normal, fan_out, ReLU gain (std √(2/(Cout·k²))), bias 0.
        case kaimingFanOut
        /// BaseDecodeHead's classifier: normal(std), bias 0.
        case normal(std: Float)
    }

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int? = nil,
                bias: Bool = true, initialization: Initialization = .pytorchDefault, generator: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0,
                     "Conv2d(\(inChannels)→\(outChannels), k \(kernel), s \(stride)): sizes must be positive")
        let shape = [outChannels, inChannels, kernel, kernel]
        let fanIn = inChannels * kernel * kernel, fanOut = outChannels * kernel * kernel
        switch initialization {
        case .pytorchDefault:
            weight = Tensor.kaimingUniform(shape, fanIn: fanIn, using: &generator, requiresGrad: true)
            let bound = 1 / Float(fanIn).squareRoot()
            self.bias = bias ? Tensor.uniform([outChannels], low: -bound, high: bound, using: &generator, requiresGrad: true) : nil
        case .kaimingFanOut:
            weight = Tensor.normal(shape, std: (2 / Float(fanOut)).squareRoot(), using: &generator, requiresGrad: true)
            self.bias = bias ? Tensor.zeros([outChannels], requiresGrad: true) : nil
        case .normal(let std):
            weight = Tensor.normal(shape, std: std, using: &generator, requiresGrad: true)
            self.bias = bias ? Tensor.zeros([outChannels], requiresGrad: true) : nil
        }
        self.stride = stride
        self.padding = padding ?? kernel / 2
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// x [B, H, W, Cin] → [B, H', W', Cout].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.conv2d(weight, bias: bias, stride: stride, padding: padding) }
}

/// Kernel-2 stride-2 transposed convolution (×2 upsampling, ViTDet / Feature2Pyramid).
public final class ConvTranspose2d: Module {
    public let weight: Tensor
    public let bias: Tensor?

    /// PyTorch's nn.ConvTranspose2d default init; its fan_in is computed from weight.size(1)·k² = Cout·4.
    public init(_ inChannels: Int, _ outChannels: Int, bias: Bool = true, generator: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0, "ConvTranspose2d(\(inChannels)→\(outChannels)): sizes must be positive")
        let fanIn = outChannels * 4
        weight = Tensor.kaimingUniform([inChannels, outChannels, 2, 2], fanIn: fanIn, using: &generator, requiresGrad: true)
        let bound = 1 / Float(fanIn).squareRoot()
        self.bias = bias ? Tensor.uniform([outChannels], low: -bound, high: bound, using: &generator, requiresGrad: true) : nil
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight)] + (bias.map { [("bias", $0)] } ?? []) }

    /// x [B, H, W, Cin] → [B, 2H, 2W, Cout].
    public func callAsFunction(_ x: Tensor) -> Tensor { x.convTranspose2x2(weight, bias: bias) }
}

/// Conv (no bias: the BatchNorm's shift replaces it) → BatchNorm, registered as nn.Sequential
/// children "i" and "i+1" (mmseg's ConvModule and DEIMv2's Sequentials number them so; an activation
/// in front shifts the indices, hence `firstIndex`). The caller applies the activation.
public final class ConvBN: Module {
    public let conv: Conv2d
    public let bn: BatchNorm
    public let firstIndex: Int

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, firstIndex: Int = 0,
                initialization: Conv2d.Initialization = .kaimingFanOut, generator: inout RandomGenerator) {
        conv = Conv2d(inChannels, outChannels, kernel: kernel, stride: stride, bias: false,
                      initialization: initialization, generator: &generator)
        bn = BatchNorm(outChannels)
        self.firstIndex = firstIndex
    }

    public override var children: [(String, Module)] { [("\(firstIndex)", conv), ("\(firstIndex + 1)", bn)] }

    public var outChannels: Int { conv.outChannels }

    /// x [B, H, W, Cin] → BN(conv(x)) [B, H', W', Cout].
    public func callAsFunction(_ x: Tensor) -> Tensor { bn(conv(x)) }
}
