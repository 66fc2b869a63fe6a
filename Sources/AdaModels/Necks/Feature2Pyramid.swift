// mmsegmentation's Feature2Pyramid (spec seg-heads-and-metrics.md §1(c); the MAE/BEiT + UPerNet recipe):
// 4 tapped block outputs, each [B, h, w, D], rescaled by 4, 2, 1, ½:
//   ×4 = ConvT(D, D, 2, s2) → BN → GELU → ConvT(D, D, 2, s2)   (stride p/4)
//   ×2 = ConvT(D, D, 2, s2)                                     (stride p/2)
//   ×1 = identity                                               (stride p)
//   ×½ = MaxPool 2×2 s2                                         (stride 2p)
// Names (under `neck.`, as mmseg's Sequentials): upsample_4x.{0 ConvT, 1 BN, 3 ConvT} (2 is the GELU),
// upsample_2x.0. Init: PyTorch's ConvTranspose2d default, BN 1/0.
//
// Legend: B batch, h×w token grid, D ViT width.
import AdaNN
import AdaTensor

public final class Feature2Pyramid: Module, FeatureNeck {
    public let tapBlocks: [Int]
    public let tapNorm: Bool
    public let up4First: ConvTranspose2d
    public let up4Norm: BatchNorm
    public let up4Second: ConvTranspose2d
    public let up2: ConvTranspose2d

    public var levelChannels: [Int] { Array(repeating: up2.weight.shape[1], count: 4) }
    public var levelScales: [Double] { [4, 2, 1, 0.5] }

    public init(dim: Int, taps: [Int], tapNorm: Bool = true, generator: inout RandomGenerator) {
        precondition(taps.count == 4, "Feature2Pyramid: 4 taps, got \(taps)")
        tapBlocks = taps
        self.tapNorm = tapNorm
        up4First = ConvTranspose2d(dim, dim, generator: &generator)
        up4Norm = BatchNorm(dim)
        up4Second = ConvTranspose2d(dim, dim, generator: &generator)
        up2 = ConvTranspose2d(dim, dim, generator: &generator)
    }

    public override var children: [(String, Module)] {
        [("upsample_4x.0", up4First), ("upsample_4x.1", up4Norm), ("upsample_4x.3", up4Second), ("upsample_2x.0", up2)]
    }

    /// Levels at scales ×4, ×2, ×1, ×½ of the grid, [B, h_l, w_l, D] each.
    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> [Tensor] {
        precondition(input.taps.count == 4, "Feature2Pyramid: expected 4 taps, got \(input.taps.count)")
        let maps = (0..<4).map { input.tapMap($0) }
        let levels = [
            up4Second(up4Norm(up4First(maps[0])).gelu()),
            up2(maps[1]),
            maps[2],
            maps[3].maxPool2d(kernel: 2, stride: 2),
        ]
        for (i, level) in levels.enumerated() { context.record("neck.level\(i)", level) }
        return levels
    }
}
