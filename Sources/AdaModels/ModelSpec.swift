// Everything needed to rebuild a model's structure: backbone shape, head, classes, adapter method.
// Saved as JSON next to adapter checkpoints (PEFT's adapter_config.json role).
import AdaNN
import AdaTensor

public enum HeadKind: String, Codable, CaseIterable, Sendable {
    /// Linear(D, K) on the final-norm patch tokens (Segmenter "linear").
    case linear
    /// SETR-naive: LayerNorm → 1×1 conv + BN + ReLU → ×4 bilinear → 1×1 conv.
    case setrNaive = "setr_naive"
}

public struct HeadSpec: Equatable, Sendable, Codable {
    public var kind: HeadKind = .linear
    /// Hidden channels of heads that have them (SETR-naive).
    public var channels: Int = 256

    public init(kind: HeadKind = .linear, channels: Int = 256) {
        self.kind = kind
        self.channels = channels
    }

    enum CodingKeys: String, CodingKey { case kind, channels }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(HeadKind.self, forKey: .kind) ?? .linear
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? 256
    }
}

public struct ModelSpec: Equatable, Sendable, Codable {
    public var backbone: ViTConfig
    public var classes: Int
    public var head: HeadSpec
    public var adapter: AdapterSettings

    public init(backbone: ViTConfig, classes: Int, head: HeadSpec = HeadSpec(), adapter: AdapterSettings = AdapterSettings()) {
        self.backbone = backbone
        self.classes = classes
        self.head = head
        self.adapter = adapter
    }

    /// A randomly initialised model of this structure (seeded), with the method's trainable set.
    public func build(seed: UInt64) -> SegmentationModel {
        var generator = RandomGenerator(seed: seed)
        let backbone = VisionTransformer(config: self.backbone, generator: &generator)
        let head: SegmentationHead
        switch self.head.kind {
        case .linear: head = LinearHead(dim: self.backbone.embedDim, classes: classes, generator: &generator)
        case .setrNaive:
            head = SETRNaiveHead(dim: self.backbone.embedDim, classes: classes, channels: self.head.channels, generator: &generator)
        }
        let model = SegmentationModel(backbone: backbone, head: head)
        AdapterInjector.apply(adapter, to: model, generator: &generator)
        return model
    }
}
