// DEIMv2's Spatial Tuning Adapter (spec sta.md; DEIMv2 dinov3_adapter.py): a 3-level pyramid at
// strides 8, 16, 32 pixels (the detail CNN's; ×2, ×1, ×½ of the token grid for patch 16) from
//   semantic: 3 tapped block outputs, bilinearly resized ×2, ×1, ×½ (the ×½ is a bilinear
//             down-sample, not pooling);
//   detail:   a tiny CNN on the image — stem conv s2 → BN → GELU → max-pool 3 s2 p1 (stride 4),
//             conv2 → BN = d8, GELU → conv3 → BN = d16, GELU → conv4 → BN = d32 (all 3×3 s2 p1, no bias);
//   fusion:   per level BN(1×1 conv(concat[semantic, detail])) with `hidden` channels, no activation.
// One tap feeds all three levels. Each semantic map is resized to its detail map's size, which is
// ×2/×1/×½ of the grid for patch 16 when H and W are multiples of 32 (the spec's setting) and keeps the
// two branches aligned otherwise (the stride-2 convs round up, the patch grid rounds down; patch 14).
//
// Names (under `neck.`, as the fixture and DEIMv2's Sequentials): stem.{0 conv, 1 BN}, conv2.{0, 1},
// conv3.{1, 2} and conv4.{1, 2} (index 0 is the GELU), fuse.{0,1,2}.{0 conv 1×1, 1 BN}.
// Init: PyTorch's Conv2d default (DEIMv2 does not re-initialise), BN 1/0.
//
// Legend: B batch, H×W image, h×w token grid, D ViT width, c detail width, hidden output width.
import AdaNN
import AdaTensor

public final class STANeck: Module, FeatureNeck {
    public let tapBlocks: [Int]
    public let tapNorm: Bool
    public let stem: ConvBN
    public let conv2: ConvBN
    public let conv3: ConvBN
    public let conv4: ConvBN
    public let fuse: [ConvBN]

    public var levelChannels: [Int] { fuse.map(\.outChannels) }
    /// Strides 8, 16, 32 relative to the patch grid.
    public var levelScales: [Double] { [8, 16, 32].map { Double(patchSize) / $0 } }
    public let patchSize: Int
    public var detailChannels: Int { stem.outChannels }

    public init(dim: Int, patchSize: Int = 16, taps: [Int], tapNorm: Bool = true, detailChannels c: Int = 16, hidden: Int,
                generator: inout RandomGenerator) {
        precondition(taps.count == 1 || taps.count == 3, "STANeck: 1 or 3 taps, got \(taps)")
        precondition(dim > 0 && c > 0 && hidden > 0, "STANeck: dim \(dim), detail channels \(c), hidden \(hidden) must be positive")
        tapBlocks = taps
        self.tapNorm = tapNorm
        self.patchSize = patchSize
        stem = ConvBN(3, c, kernel: 3, stride: 2, initialization: .pytorchDefault, generator: &generator)
        conv2 = ConvBN(c, 2 * c, kernel: 3, stride: 2, initialization: .pytorchDefault, generator: &generator)
        conv3 = ConvBN(2 * c, 4 * c, kernel: 3, stride: 2, firstIndex: 1, initialization: .pytorchDefault, generator: &generator)
        conv4 = ConvBN(4 * c, 4 * c, kernel: 3, stride: 2, firstIndex: 1, initialization: .pytorchDefault, generator: &generator)
        fuse = [2 * c, 4 * c, 4 * c].map {
            ConvBN(dim + $0, hidden, kernel: 1, initialization: .pytorchDefault, generator: &generator)
        }
    }

    public override var children: [(String, Module)] {
        [("stem", stem), ("conv2", conv2), ("conv3", conv3), ("conv4", conv4)]
            + fuse.enumerated().map { ("fuse.\($0.offset)", $0.element) }
    }

    /// The detail pyramid d8, d16, d32 from images [B, 3, H, W].
    func detail(_ images: Tensor) -> [Tensor] {
        let x = images.permuted([0, 2, 3, 1])                                  // [B, H, W, 3]
        let stem = self.stem(x).gelu().maxPool2d(kernel: 3, stride: 2, padding: 1) // [B, H/4, W/4, c]
        let d8 = conv2(stem)                                                    // [B, H/8, W/8, 2c]
        let d16 = conv3(d8.gelu())                                              // [B, H/16, W/16, 4c]
        let d32 = conv4(d16.gelu())                                             // [B, H/32, W/32, 4c]
        return [d8, d16, d32]
    }

    /// Levels at strides 8, 16, 32, [B, h_l, w_l, hidden] each.
    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> [Tensor] {
        guard let images = input.images else { preconditionFailure("STANeck needs the input images (its detail branch)") }
        precondition(input.taps.count == tapBlocks.count, "STANeck: expected \(tapBlocks.count) taps, got \(input.taps.count)")
        let details = detail(images)
        return details.enumerated().map { level, d in
            let tap = input.tapMap(tapBlocks.count == 1 ? 0 : level)            // [B, h, w, D]
            let semantic = tap.resizedBilinearChannelsLast(height: d.shape[1], width: d.shape[2])
            context.record("neck.semantic\(level)", semantic)
            context.record("neck.detail\(level)", d)
            let fused = fuse[level](Tensor.concat([semantic, d], axis: 3))
            context.record("neck.level\(level)", fused)
            return fused
        }
    }
}
