// Everything needed to rebuild a model's structure: backbone shape, head, classes, adapter method.
// Saved as JSON next to adapter checkpoints (PEFT's adapter_config.json role).
import AdaNN
import AdaTensor

public enum HeadKind: String, Codable, CaseIterable, Sendable {
    /// Linear(D, K) on the final-norm patch tokens (Segmenter "linear").
    case linear
    /// SETR-naive: LayerNorm → 1×1 conv + BN + ReLU → ×4 bilinear → 1×1 conv.
    case setrNaive = "setr_naive"
    /// UPerNet (PPM + FPN) over a neck's pyramid.
    case upernet
}

public struct HeadSpec: Equatable, Sendable, Codable {
    public var kind: HeadKind = .linear
    /// Hidden channels of heads that have them (SETR-naive, UPerNet).
    public var channels: Int = 256
    /// UPerNet's pyramid-pooling output sizes.
    public var poolScales: [Int] = [1, 2, 3, 6]
    /// UPerNet's Dropout2d before the classifier.
    public var dropout: Float = 0.1
    /// Weight of the auxiliary FCN head's loss on the stride-p level; 0 = no auxiliary head.
    public var auxWeight: Float = 0
    /// Hidden channels of the auxiliary FCN head.
    public var auxChannels: Int = 256

    public init(kind: HeadKind = .linear, channels: Int = 256, poolScales: [Int] = [1, 2, 3, 6], dropout: Float = 0.1,
                auxWeight: Float = 0, auxChannels: Int = 256) {
        self.kind = kind
        self.channels = channels
        self.poolScales = poolScales
        self.dropout = dropout
        self.auxWeight = auxWeight
        self.auxChannels = auxChannels
    }

    enum CodingKeys: String, CodingKey { case kind, channels, poolScales, dropout, auxWeight, auxChannels }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(HeadKind.self, forKey: .kind) ?? .linear
        channels = try c.decodeIfPresent(Int.self, forKey: .channels) ?? 256
        poolScales = try c.decodeIfPresent([Int].self, forKey: .poolScales) ?? [1, 2, 3, 6]
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0.1
        auxWeight = try c.decodeIfPresent(Float.self, forKey: .auxWeight) ?? 0
        auxChannels = try c.decodeIfPresent(Int.self, forKey: .auxChannels) ?? 256
    }

    /// Why this head cannot be built over `neck`, or nil.
    public func problem(neck: NeckSpec) -> String? {
        if channels < 1 { return "head.channels must be ≥ 1, got \(channels)" }
        switch kind {
        case .upernet:
            if neck.kind == .none { return "head.kind upernet decodes a pyramid: set neck.kind to sta or feature2pyramid" }
            if poolScales.isEmpty || poolScales.contains(where: { $0 < 1 }) {
                return "head.pool_scales must be sizes ≥ 1 such as [1, 2, 3, 6], got \(poolScales)"
            }
            if !(0..<1).contains(dropout) { return "head.dropout must be in [0, 1), got \(dropout)" }
            if auxWeight < 0 || !auxWeight.isFinite { return "head.aux_weight must be ≥ 0, got \(auxWeight)" }
            if auxWeight > 0 && auxChannels < 1 { return "head.aux_channels must be ≥ 1, got \(auxChannels)" }
        case .linear, .setrNaive:
            if neck.kind != .none { return "neck.kind \(neck.kind.rawValue) needs a pyramid head: set head.kind to upernet (or neck.kind to none)" }
            if auxWeight != 0 { return "head.aux_weight applies to the upernet head only" }
        }
        return nil
    }
}

public struct ModelSpec: Equatable, Sendable, Codable {
    public var backbone: ViTConfig
    public var classes: Int
    public var head: HeadSpec
    public var neck: NeckSpec
    public var adapter: AdapterSettings

    public init(backbone: ViTConfig, classes: Int, head: HeadSpec = HeadSpec(), neck: NeckSpec = NeckSpec(),
                adapter: AdapterSettings = AdapterSettings()) {
        self.backbone = backbone
        self.classes = classes
        self.head = head
        self.neck = neck
        self.adapter = adapter
    }

    enum CodingKeys: String, CodingKey { case backbone, classes, head, neck, adapter }

    /// Specs saved before necks existed decode with no neck.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        backbone = try c.decode(ViTConfig.self, forKey: .backbone)
        classes = try c.decode(Int.self, forKey: .classes)
        head = try c.decode(HeadSpec.self, forKey: .head)
        neck = try c.decodeIfPresent(NeckSpec.self, forKey: .neck) ?? NeckSpec()
        adapter = try c.decode(AdapterSettings.self, forKey: .adapter)
    }

    /// A randomly initialised model of this structure (seeded), with the method's trainable set.
    public func build(seed: UInt64) -> SegmentationModel {
        var generator = RandomGenerator(seed: seed)
        let backbone = VisionTransformer(config: self.backbone, generator: &generator)
        // Built before the head, which sizes its input convs from the neck's levels.
        let neck = self.neck.build(dim: self.backbone.embedDim, depth: self.backbone.depth, patchSize: self.backbone.patchSize,
                                   generator: &generator)
        let head: SegmentationHead
        switch self.head.kind {
        case .linear: head = LinearHead(dim: self.backbone.embedDim, classes: classes, generator: &generator)
        case .setrNaive:
            head = SETRNaiveHead(dim: self.backbone.embedDim, classes: classes, channels: self.head.channels, generator: &generator)
        case .upernet:
            guard let neck else { preconditionFailure("ModelSpec: the upernet head needs a neck (\(self.head.problem(neck: self.neck) ?? ""))") }
            head = UPerNetHead(inChannels: neck.levelChannels, channels: self.head.channels, classes: classes,
                               poolScales: self.head.poolScales, dropout: self.head.dropout, generator: &generator)
        }
        let model = SegmentationModel(backbone: backbone, head: head)
        model.neck = neck
        if self.head.kind == .upernet, self.head.auxWeight > 0, let neck {
            model.auxHead = AuxiliaryFCNHead(inChannels: neck.levelChannels[neck.gridLevel], channels: self.head.auxChannels,
                                             classes: classes, generator: &generator)
            model.auxWeight = self.head.auxWeight
        }
        AdapterInjector.apply(adapter, to: model, generator: &generator)
        return model
    }
}
