// UPerNet decoder (mmseg UPerHead; spec seg-heads-and-metrics.md §1(c), fixture seeds_parity
// sta_upernet) over a neck's L levels, finest first. Every ConvBNReLU is conv (no bias) → BN → ReLU.
//   PPM on the coarsest level x: for each pool scale s, AdaptiveAvgPool(s) → 1×1 ConvBNReLU → bilinear
//     back to x's size; bottleneck = 3×3 ConvBNReLU(concat[x, ppm…]) — the top of the pyramid.
//   laterals: 1×1 ConvBNReLU on the other L − 1 levels; top-down: lat[i−1] += bilinear(lat[i]).
//   fpn: 3×3 ConvBNReLU on those L − 1 laterals (the top keeps the bottleneck output); every output is
//     resized to the finest level, concatenated (L·c) → fpn_bottleneck 3×3 ConvBNReLU → Dropout2d →
//     conv_seg 1×1 (with bias) → logits at the finest level's stride.
// All resizes are bilinear, align_corners=False. Channels-last throughout; one transpose of the K-channel
// logits to NCHW at the end.
//
// Names (under `head.`, as the fixture): ppm.{i}.{0,1}, bottleneck.{0,1}, lateral.{i}.{0,1},
// fpn.{i}.{0,1}, fpn_bottleneck.{0,1}, conv_seg.{weight [K, c, 1, 1], bias}.
// Init (mmseg): ConvModule convs kaiming-normal fan_out, BN 1/0, conv_seg normal(std 0.01) and bias 0.
//
// Legend: B batch, level l of size h_l×w_l with C_l channels, c head channels, K classes.
import AdaNN
import AdaTensor

public final class UPerNetHead: Module, SegmentationHead {
    public let poolScales: [Int]
    public let ppm: [ConvBN]
    public let bottleneck: ConvBN
    public let lateral: [ConvBN]
    public let fpn: [ConvBN]
    public let fpnBottleneck: ConvBN
    public let convSeg: Conv2d
    /// Dropout2d probability before the classifier (training only).
    public let dropout: Float

    public var classes: Int { convSeg.outChannels }
    public var channels: Int { bottleneck.outChannels }
    public var tapBlocks: [Int] { [] }
    public var levels: Int { lateral.count + 1 }

    public init(inChannels: [Int], channels c: Int, classes: Int, poolScales: [Int] = [1, 2, 3, 6], dropout: Float = 0.1,
                generator: inout RandomGenerator) {
        precondition(inChannels.count >= 1 && inChannels.allSatisfy { $0 > 0 } && c > 0 && classes > 0,
                     "UPerNetHead: levels \(inChannels), channels \(c), classes \(classes) must be positive")
        precondition(poolScales.allSatisfy { $0 > 0 }, "UPerNetHead: pool scales \(poolScales) must be positive")
        precondition(dropout >= 0 && dropout < 1, "UPerNetHead: dropout must be in [0, 1), got \(dropout)")
        let top = inChannels[inChannels.count - 1]
        self.poolScales = poolScales
        ppm = poolScales.map { _ in ConvBN(top, c, kernel: 1, generator: &generator) }
        bottleneck = ConvBN(top + poolScales.count * c, c, kernel: 3, generator: &generator)
        lateral = inChannels.dropLast().map { ConvBN($0, c, kernel: 1, generator: &generator) }
        fpn = inChannels.dropLast().map { _ in ConvBN(c, c, kernel: 3, generator: &generator) }
        fpnBottleneck = ConvBN(inChannels.count * c, c, kernel: 3, generator: &generator)
        convSeg = Conv2d(c, classes, kernel: 1, initialization: .normal(std: 0.01), generator: &generator)
        self.dropout = dropout
    }

    public override var children: [(String, Module)] {
        ppm.enumerated().map { ("ppm.\($0.offset)", $0.element as Module) }
            + [("bottleneck", bottleneck)]
            + lateral.enumerated().map { ("lateral.\($0.offset)", $0.element as Module) }
            + fpn.enumerated().map { ("fpn.\($0.offset)", $0.element as Module) }
            + [("fpn_bottleneck", fpnBottleneck), ("conv_seg", convSeg)]
    }

    /// input.levels (channels-last, finest first) → logits [B, K, h_0, w_0].
    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor {
        let levels = input.levels
        precondition(levels.count == self.levels, "UPerNetHead: expected \(self.levels) levels, got \(levels.count)")
        let top = levels[levels.count - 1]
        let topH = top.shape[1], topW = top.shape[2]
        let pooled = zip(poolScales, ppm).map { scale, conv in
            conv(top.adaptiveAvgPool2d(height: scale, width: scale)).relu().resizedBilinearChannelsLast(height: topH, width: topW)
        }
        let ppmOut = bottleneck(Tensor.concat([top] + pooled, axis: 3)).relu()
        context.record("head.ppm_out", ppmOut)

        var laterals = zip(levels, lateral).map { level, conv in conv(level).relu() } + [ppmOut]
        for i in stride(from: laterals.count - 1, to: 0, by: -1) {
            let below = laterals[i - 1]
            laterals[i - 1] = below + laterals[i].resizedBilinearChannelsLast(height: below.shape[1], width: below.shape[2])
        }
        let finestH = laterals[0].shape[1], finestW = laterals[0].shape[2]
        let outputs = zip(laterals, fpn).map { lat, conv in conv(lat).relu() } + [laterals[laterals.count - 1]]
        let resized = outputs.map { $0.resizedBilinearChannelsLast(height: finestH, width: finestW) }
        var fused = fpnBottleneck(Tensor.concat(resized, axis: 3)).relu()
        context.record("head.fpn_fused", fused)
        if isTraining { fused = fused.channelDropout(probability: dropout, generator: &context.generator) }
        return convSeg(fused).permuted([0, 3, 1, 2])                            // [B, K, h_0, w_0]
    }
}

/// mmseg's auxiliary FCNHead (num_convs 1, concat_input False): 3×3 ConvBNReLU → Dropout2d → 1×1 conv,
/// on one pyramid level; its loss is added with a weight during training and it is skipped at test time.
/// Names (under `aux_head.`): conv.{0,1}, conv_seg.{weight, bias}.
public final class AuxiliaryFCNHead: Module {
    public let conv: ConvBN
    public let convSeg: Conv2d
    public let dropout: Float

    public init(inChannels: Int, channels: Int, classes: Int, dropout: Float = 0.1, generator: inout RandomGenerator) {
        conv = ConvBN(inChannels, channels, kernel: 3, generator: &generator)
        convSeg = Conv2d(channels, classes, kernel: 1, initialization: .normal(std: 0.01), generator: &generator)
        self.dropout = dropout
    }

    public override var children: [(String, Module)] { [("conv", conv), ("conv_seg", convSeg)] }

    /// level [B, h, w, C] → logits [B, K, h, w].
    public func callAsFunction(_ level: Tensor, context: ForwardContext) -> Tensor {
        var x = conv(level).relu()
        if isTraining { x = x.channelDropout(probability: dropout, generator: &context.generator) }
        return convSeg(x).permuted([0, 3, 1, 2])
    }
}

extension Tensor {
    /// Dropout2d on a channels-last map [B, H, W, C]: whole channels of a sample are zeroed with
    /// probability p, the rest scaled by 1/(1 − p) (mmseg's decode-head dropout is nn.Dropout2d).
    func channelDropout(probability p: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(rank == 4, "channelDropout: input must be [B, H, W, C], got \(shape)")
        if p == 0 { return self }
        let b = shape[0], c = shape[3]
        let keep = 1 / (1 - p)
        let mask = (0..<(b * c)).map { _ in generator.nextFloat() < p ? Float(0) : keep }
        return self * Tensor(shape: [b, 1, 1, c], values: mask)
    }
}
