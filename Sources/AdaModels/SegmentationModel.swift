// A ViT backbone, an optional adapter after every block (AdaRoute), adapters injected into the
// blocks' linears or MLPs (LoRA, AdaptFormer, …), and a segmentation head. Parameter names follow the
// fixtures' export naming: timm names at the root, then `adapters.{i}.*`, `expert.*`, `head.*`.
//
// Legend: B batch, H×W image, h×w token grid (patch p), N = h·w, D width, K classes.
import AdaNN
import AdaTensor

public final class SegmentationModel: Module {
    public let backbone: VisionTransformer
    public var head: SegmentationHead
    /// One optional adapter after each block (applied to patch tokens only).
    public var blockAdapters: [BlockAdapter?]
    /// AdaRoute's shared expert center, when the method uses one.
    public var expert: ExpertCenter?

    public init(backbone: VisionTransformer, head: SegmentationHead) {
        self.backbone = backbone
        self.head = head
        blockAdapters = Array(repeating: nil, count: backbone.blocks.count)
    }

    public override var children: [(String, Module)] {
        var out: [(String, Module)] = [("", backbone)]
        for (i, adapter) in blockAdapters.enumerated() { if let adapter { out.append(("adapters.\(i)", adapter)) } }
        if let expert { out.append(("expert", expert)) }
        out.append(("head", head))
        return out
    }

    public var classes: Int { head.classes }

    /// images [B, 3, H, W] → logits [B, K, h', w'] at the head's stride (before upsampling).
    public func headLogits(_ images: Tensor, context: ForwardContext) -> Tensor {
        let p = backbone.config.patchSize
        precondition(images.shape[2] >= p && images.shape[3] >= p,
                     "image size \(images.shape[2])×\(images.shape[3]) is smaller than the patch size \(p)")
        let h = images.shape[2] / p, w = images.shape[3] / p, n = h * w
        var x = backbone.embed(images)
        context.record("tokens_embed", x)
        var taps: [Tensor] = []
        let tapSet = Set(head.tapBlocks)
        for (i, block) in backbone.blocks.enumerated() {
            x = block(x, context: context)
            context.record("block\(i).out", x)
            if let adapter = blockAdapters[i] {
                let cls = x.slice(axis: 1, range: 0..<1)
                let patches = adapter(x.slice(axis: 1, range: 1..<(n + 1)), gridHeight: h, gridWidth: w,
                                      context: context, name: "adapter\(i)")
                x = Tensor.concat([cls, patches], axis: 1)
                context.record("adapter\(i).out", x)
            }
            if tapSet.contains(i) { taps.append(x.slice(axis: 1, range: 1..<(n + 1))) }
        }
        let features = backbone.norm(x.slice(axis: 1, range: 1..<(n + 1)))
        context.record("patch_features", features)
        let logits = head(HeadInput(tokens: features, gridHeight: h, gridWidth: w, taps: taps), context: context)
        context.record("logits_lowres", logits)
        return logits
    }

    /// images [B, 3, H, W] → logits [B, K, H, W].
    public func callAsFunction(_ images: Tensor, context: ForwardContext) -> Tensor {
        let low = headLogits(images, context: context)
        return low.resizedBilinear(height: images.shape[2], width: images.shape[3])
    }

    /// Mean cross-entropy over non-ignored pixels (label 255 = ignore).
    public func loss(_ images: Tensor, labels: [Int32], context: ForwardContext) throws -> (loss: Tensor, logits: Tensor) {
        let logits = self(images, context: context)
        return (try logits.crossEntropy(labels: labels, ignoreIndex: 255), logits)
    }
}
