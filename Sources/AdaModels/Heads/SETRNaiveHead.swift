// SETR-Naive head (mmseg SETRUPHead with num_convs 1, kernel 1, up_scale 4; spec
// seg-heads-and-metrics.md §1(b)): the final-norm patch tokens → LayerNorm (eps 1e-6) → 1×1 conv D→c
// (no bias: BatchNorm follows, as mmseg's ConvModule) → BatchNorm → ReLU → bilinear ×4 → 1×1 conv
// c→K with bias → logits at stride p/4. The model upsamples them to the label size.
//
// Channels-last throughout: on tokens [B, N, D] a 1×1 conv is a Linear, and the BatchNorm statistics
// over B·h·w rows are those of BatchNorm2d on the NCHW map. One transpose to NCHW before the upsample.
//
// Order of the last two steps: a 1×1 conv and a bilinear resize commute exactly (the resize mixes
// pixels with weights summing to 1 per output, the conv mixes channels per pixel, and the bias passes
// through a weighted average with total weight 1). So the classifier runs on the h×w grid and the
// resize on K channels: the classifier GEMM is 16× smaller (N·c·K instead of 16N·c·K), and the
// resize (output 16N·K instead of 16N·c) costs less whenever K < c and stays far below the saved GEMM
// otherwise. Only float rounding differs from mmseg's upsample-then-classify. (mmseg's dropout
// between them is 0 in the SETR-Naive config.)
//
// Init (mmseg): conv kaiming-normal with fan_out, ReLU gain (ConvModule's default: std √(2/c)), BN 1/0,
// LayerNorm 1/0, classifier normal(std 0.01) with zero bias (BaseDecodeHead's conv_seg init).
// Names (under the model's `head.`): norm.{weight,bias}, conv.weight [c, D], bn.{weight,bias,
// running_mean,running_var,num_batches_tracked}, cls.{weight [K, c], bias [K]}. mmseg stores the
// convs as [out, in, 1, 1]; a checkpoint loader reshapes them to these 2-D weights.
//
// Legend: B batch, h×w token grid, N = h·w, D token width, c head channels, K classes.
import AdaNN
import AdaTensor

public final class SETRNaiveHead: Module, SegmentationHead {
    public let norm: LayerNorm
    public let conv: Linear
    public let bn: BatchNorm
    public let cls: Linear
    /// The bilinear factor between the token grid and the logits (SETR-Naive: 4).
    public let upScale: Int

    public var classes: Int { cls.outFeatures }
    public var channels: Int { conv.outFeatures }
    public var dim: Int { conv.inFeatures }
    public var tapBlocks: [Int] { [] }

    public init(dim: Int, classes: Int, channels: Int = 256, upScale: Int = 4, generator: inout RandomGenerator) {
        precondition(dim > 0 && classes > 0 && channels > 0 && upScale >= 1,
                     "SETRNaiveHead: dim \(dim), classes \(classes), channels \(channels), upScale \(upScale) must be positive")
        norm = LayerNorm(dim, eps: 1e-6)
        let convStd = (2 / Float(channels)).squareRoot()
        conv = Linear(weight: Tensor.normal([channels, dim], std: convStd, using: &generator, requiresGrad: true), bias: nil)
        bn = BatchNorm(channels)
        cls = Linear(weight: Tensor.normal([classes, channels], std: 0.01, using: &generator, requiresGrad: true),
                     bias: Tensor.zeros([classes], requiresGrad: true))
        self.upScale = upScale
    }

    public override var children: [(String, Module)] { [("norm", norm), ("conv", conv), ("bn", bn), ("cls", cls)] }

    /// tokens [B, N, D] → logits [B, K, upScale·h, upScale·w].
    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor {
        let tokens = input.tokens, h = input.gridHeight, w = input.gridWidth
        precondition(tokens.rank == 3 && tokens.shape[1] == h * w && tokens.shape[2] == dim,
                     "SETRNaiveHead: tokens \(tokens.shape) must be [B, \(h)·\(w), \(dim)] for a \(h)×\(w) grid")
        let b = tokens.shape[0]
        let features = bn(conv(norm(tokens), context: context)).relu()    // [B, N, c]
        context.record("head.features", features)
        return cls(features, context: context)                            // [B, N, K]
            .transposed(1, 2)                                             // [B, K, N]
            .reshaped([b, classes, h, w])                                 // token n ↦ (n / w, n % w)
            .resizedBilinear(height: upScale * h, width: upScale * w)     // [B, K, 4h, 4w]
    }
}
