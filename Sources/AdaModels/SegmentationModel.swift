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
    /// One head per task (dataset); a single-task model has one, named `head`, several are `heads.{t}`.
    public var heads: [SegmentationHead]
    /// The first task's head (the only one of a single-task model).
    public var head: SegmentationHead {
        get { heads[0] }
        set { heads[0] = newValue }
    }
    /// One optional adapter after each block (applied to patch tokens only).
    public var blockAdapters: [BlockAdapter?]
    /// AdaRoute's shared expert center, when the method uses one.
    public var expert: ExpertCenter?
    /// Pyramid builder between the backbone and a multi-level head (UPerNet).
    public var neck: FeatureNeck?
    /// Auxiliary FCN head on the neck's level nearest stride p, with the weight of its loss (training only).
    public var auxHead: AuxiliaryFCNHead?
    public var auxWeight: Float = 0.4

    public convenience init(backbone: VisionTransformer, head: SegmentationHead) {
        self.init(backbone: backbone, heads: [head])
    }

    public init(backbone: VisionTransformer, heads: [SegmentationHead]) {
        precondition(!heads.isEmpty, "SegmentationModel needs at least one head")
        self.backbone = backbone
        self.heads = heads
        blockAdapters = Array(repeating: nil, count: backbone.blocks.count)
    }

    public override var children: [(String, Module)] {
        var out: [(String, Module)] = [("", backbone)]
        for (i, adapter) in blockAdapters.enumerated() { if let adapter { out.append(("adapters.\(i)", adapter)) } }
        if let expert { out.append(("expert", expert)) }
        if let neck { out.append(("neck", neck)) }
        if heads.count == 1 { out.append(("head", head)) } else {
            for (t, head) in heads.enumerated() { out.append(("heads.\(t)", head)) }
        }
        if let auxHead { out.append(("aux_head", auxHead)) }
        return out
    }

    public var classes: Int { head.classes }

    /// Classes of task `task`'s head.
    public func classes(task: Int) -> Int {
        guard heads.indices.contains(task) else { fatalError("SegmentationModel: task \(task), but the model has \(heads.count) heads") }
        return heads[task].classes
    }

    /// The head of the task every sample of `context` belongs to (task 0 when no ids are given). A model
    /// with one head shares it between all tasks (routing may still differ per task).
    func taskHead(_ context: ForwardContext) -> SegmentationHead {
        guard heads.count > 1, let first = context.taskIds.first else { return head }
        guard context.taskIds.allSatisfy({ $0 == first }), heads.indices.contains(first) else {
            // fatalError, not precondition: -O builds drop precondition messages.
            fatalError("SegmentationModel: task ids \(context.taskIds) need one task in 0..<\(heads.count) per call (mixed batches go through loss)")
        }
        return heads[first]
    }

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
        let head = taskHead(context) // (a separate binding: calling the returned existential inline crashes swiftc 6.3 SILGen)
        let logits = head(features(images, context: context), context: context)
        context.record("logits_lowres", logits)
        return logits
    }

    /// images [B, 3, H, W] → logits [B, K, H, W].
    public func callAsFunction(_ images: Tensor, context: ForwardContext) -> Tensor {
        let low = headLogits(images, context: context)
        return low.resizedBilinear(height: images.shape[2], width: images.shape[3])
    }

    /// Mean cross-entropy over non-ignored pixels (label 255 = ignore) of the main head's logits upsampled to
    /// the image size, plus `auxWeight` × the auxiliary head's in training mode. The upsampling is fused into
    /// the loss (`upsampledCrossEntropy`): full-resolution logits are never stored. `headLogits` are the main
    /// head's logits at its own stride (`resizedBilinear` them to the image size to look at them).
    /// A batch mixing tasks (`context.taskIds`) sends each task's samples through that task's head; the loss
    /// is then the mean over every non-ignored pixel of the batch, and `headLogits` is nil (class counts differ).
    public func loss(_ images: Tensor, labels: [Int32], context: ForwardContext) throws -> (loss: Tensor, headLogits: Tensor?) {
        let input = features(images, context: context)
        let height = images.shape[2], width = images.shape[3]
        let ids = context.taskIds
        guard heads.count > 1, let first = ids.first, ids.contains(where: { $0 != first }) else {
            let head = taskHead(context)
            let lowRes = head(input, context: context)
            context.record("logits_lowres", lowRes)
            var loss = try lowRes.upsampledCrossEntropy(height: height, width: width, labels: labels, ignoreIndex: 255)
            if isTraining, let auxHead, let neck {
                let aux = auxHead(input.levels[neck.gridLevel], context: context)
                loss = loss + auxWeight * (try aux.upsampledCrossEntropy(height: height, width: width, labels: labels, ignoreIndex: 255))
            }
            return (loss, lowRes)
        }
        precondition(ids.count == images.shape[0], "SegmentationModel.loss: \(ids.count) task ids for \(images.shape[0]) images")
        let plane = height * width
        let scored = labels.reduce(0) { $0 + ($1 == 255 ? 0 : 1) }
        var total: Tensor? // (an all-ignored task adds 0, as crossEntropy does for an all-ignored batch)
        for task in Array(Set(ids)).sorted() {
            guard heads.indices.contains(task) else { fatalError("SegmentationModel.loss: task id \(task) but the model has \(heads.count) heads") }
            let rows = ids.indices.filter { ids[$0] == task }
            let taskLabels = rows.flatMap { labels[($0 * plane)..<(($0 + 1) * plane)] }
            let taskScored = taskLabels.reduce(0) { $0 + ($1 == 255 ? 0 : 1) }
            let head = heads[task]
            let logits = head(input.selecting(rows: rows), context: context)
            // Mean over this task's pixels, weighted by its share of the batch's scored pixels.
            let part = try logits.upsampledCrossEntropy(height: height, width: width, labels: taskLabels, ignoreIndex: 255)
                * (Float(taskScored) / Float(max(scored, 1)))
            total = total.map { $0 + part } ?? part
        }
        return (total!, nil)
    }
}
