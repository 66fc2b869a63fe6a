// A ViT backbone, an optional adapter after every block (AdaRoute), adapters injected into the
// blocks' linears or MLPs (LoRA, AdaptFormer, …), an optional neck that builds a feature pyramid from
// tapped blocks (STA, Feature2Pyramid), a segmentation head and an optional auxiliary head (training
// only). Parameter names follow the fixtures' export naming: timm names at the root, then
// `adapters.{i}.*`, `expert.*`, `neck.*`, `head.*`, `aux_head.*`.
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
    /// Pyramid builder between the backbone and a multi-level head (UPerNet).
    public var neck: FeatureNeck?
    /// Auxiliary FCN head on the neck's level nearest stride p, with the weight of its loss (training only).
    public var auxHead: AuxiliaryFCNHead?
    public var auxWeight: Float = 0.4

    public init(backbone: VisionTransformer, head: SegmentationHead) {
        self.backbone = backbone
        self.head = head
        blockAdapters = Array(repeating: nil, count: backbone.blocks.count)
    }

    public override var children: [(String, Module)] {
        var out: [(String, Module)] = [("", backbone)]
        for (i, adapter) in blockAdapters.enumerated() { if let adapter { out.append(("adapters.\(i)", adapter)) } }
        if let expert { out.append(("expert", expert)) }
        if let neck { out.append(("neck", neck)) }
        out.append(("head", head))
        if let auxHead { out.append(("aux_head", auxHead)) }
        return out
    }

    public var classes: Int { head.classes }

    /// What the head reads: final-norm patch tokens, the taps, and the neck's pyramid if there is one.
    public func features(_ images: Tensor, context: ForwardContext) -> HeadInput {
        let p = backbone.config.patchSize
        precondition(images.shape[2] >= p && images.shape[3] >= p,
                     "image size \(images.shape[2])×\(images.shape[3]) is smaller than the patch size \(p)")
        let h = images.shape[2] / p, w = images.shape[3] / p, n = h * w
        var x = backbone.embed(images)
        context.record("tokens_embed", x)
        let tapBlocks = neck?.tapBlocks ?? head.tapBlocks
        var tapped: [Int: Tensor] = [:]
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
            if tapBlocks.contains(i) { tapped[i] = x.slice(axis: 1, range: 1..<(n + 1)) }
        }
        let last = backbone.blocks.count - 1
        let features = backbone.norm(x.slice(axis: 1, range: 1..<(n + 1)))
        context.record("patch_features", features)
        // The final LayerNorm of the last block's tap is `features` itself: reuse it.
        let normTaps = neck?.tapNorm ?? false
        let taps = tapBlocks.map { i in normTaps ? (i == last ? features : backbone.norm(tapped[i]!)) : tapped[i]! }
        let input = HeadInput(tokens: features, gridHeight: h, gridWidth: w, taps: taps, images: images)
        guard let neck else { return input }
        return HeadInput(tokens: features, gridHeight: h, gridWidth: w, taps: taps, images: images,
                         levels: neck(input, context: context))
    }

    /// images [B, 3, H, W] → logits [B, K, h', w'] at the head's stride (before upsampling).
    public func headLogits(_ images: Tensor, context: ForwardContext) -> Tensor {
        let logits = head(features(images, context: context), context: context)
        context.record("logits_lowres", logits)
        return logits
    }

    /// images [B, 3, H, W] → logits [B, K, H, W].
    public func callAsFunction(_ images: Tensor, context: ForwardContext) -> Tensor {
        let low = headLogits(images, context: context)
        return low.resizedBilinear(height: images.shape[2], width: images.shape[3])
    }

    /// Mean cross-entropy over non-ignored pixels (label 255 = ignore), plus `auxWeight` × the auxiliary
    /// head's cross-entropy in training mode. `logits` are the main head's, at the image size.
    public func loss(_ images: Tensor, labels: [Int32], context: ForwardContext) throws -> (loss: Tensor, logits: Tensor) {
        let input = features(images, context: context)
        let lowRes = head(input, context: context)
        context.record("logits_lowres", lowRes)
        let height = images.shape[2], width = images.shape[3]
        let logits = lowRes.resizedBilinear(height: height, width: width)
        var loss = try logits.crossEntropy(labels: labels, ignoreIndex: 255)
        if isTraining, let auxHead, let neck {
            let aux = auxHead(input.levels[neck.gridLevel], context: context).resizedBilinear(height: height, width: width)
            loss = loss + auxWeight * (try aux.crossEntropy(labels: labels, ignoreIndex: 255))
        }
        return (loss, logits)
    }
}
