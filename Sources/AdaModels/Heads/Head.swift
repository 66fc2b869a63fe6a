// Segmentation heads turn backbone features into class logits on some grid; the model upsamples them
// bilinearly (align_corners=False) to the label size.
import AdaNN
import AdaTensor

/// What the backbone hands a head.
public struct HeadInput {
    /// Patch tokens after the ViT's final LayerNorm, [B, N, D].
    public let tokens: Tensor
    public let gridHeight: Int
    public let gridWidth: Int
    /// Outputs of tapped blocks (after their adapters), [B, N, D] each, for necks.
    public let taps: [Tensor]

    public init(tokens: Tensor, gridHeight: Int, gridWidth: Int, taps: [Tensor] = []) {
        self.tokens = tokens
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
        self.taps = taps
    }
}

public protocol SegmentationHead: Module {
    var classes: Int { get }
    /// Block indices whose outputs the head needs as `taps` (empty for single-map heads).
    var tapBlocks: [Int] { get }
    /// Logits [B, K, h', w'] at the head's own stride.
    func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor
}

/// Segmenter's "linear" head: Linear(D, K) on every patch token, logits on the patch grid.
/// Names: head.weight [K, D], head.bias [K]; init trunc_normal(std 0.02), bias 0.
public final class LinearHead: Module, SegmentationHead {
    public let weight: Tensor
    public let bias: Tensor
    public var classes: Int { weight.shape[0] }
    public var tapBlocks: [Int] { [] }

    public init(dim: Int, classes: Int, generator: inout RandomGenerator) {
        weight = Tensor.truncatedNormal([classes, dim], std: 0.02, using: &generator, requiresGrad: true)
        bias = Tensor.zeros([classes], requiresGrad: true)
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor {
        let b = input.tokens.shape[0]
        return input.tokens.linear(weight, bias: bias)                   // [B, N, K]
            .transposed(1, 2)                                            // [B, K, N]
            .reshaped([b, classes, input.gridHeight, input.gridWidth])   // token n ↦ (n / w, n % w)
    }
}
