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
    /// Classes of the first (usually only) task's head.
    public var classes: Int
    public var head: HeadSpec
    public var neck: NeckSpec
    public var adapter: AdapterSettings
    /// Multi-dataset models: the class count and name of every task's head (one head per dataset, and one
    /// routing row per dataset for MHR). Empty for a single-task model.
    public var tasks: [TaskHead]

    public struct TaskHead: Equatable, Sendable, Codable {
        public var name: String
        public var classes: Int
        public init(name: String, classes: Int) { self.name = name; self.classes = classes }
    }

    public init(backbone: ViTConfig, classes: Int, head: HeadSpec = HeadSpec(), neck: NeckSpec = NeckSpec(),
                adapter: AdapterSettings = AdapterSettings(), tasks: [TaskHead] = []) {
        precondition(tasks.isEmpty || tasks[0].classes == classes, "ModelSpec: classes \(classes) must be the first task's \(tasks[0].classes)")
        self.backbone = backbone
        self.classes = classes
        self.head = head
        self.neck = neck
        self.adapter = adapter
        self.tasks = tasks
    }

    enum CodingKeys: String, CodingKey { case backbone, classes, head, neck, adapter, tasks }

    /// Specs saved before necks (or tasks) existed decode with none.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        backbone = try c.decode(ViTConfig.self, forKey: .backbone)
        classes = try c.decode(Int.self, forKey: .classes)
        head = try c.decode(HeadSpec.self, forKey: .head)
        neck = try c.decodeIfPresent(NeckSpec.self, forKey: .neck) ?? NeckSpec()
        adapter = try c.decode(AdapterSettings.self, forKey: .adapter)
        tasks = try c.decodeIfPresent([TaskHead].self, forKey: .tasks) ?? []
    }

    /// Classes of each task's head, in task order (one entry for a single-task model).
    public var taskClasses: [Int] { tasks.isEmpty ? [classes] : tasks.map(\.classes) }

    /// The task index of a head name; nil if no task has it.
    public func taskIndex(named name: String) -> Int? { tasks.firstIndex { $0.name == name } }

    /// A randomly initialised model of this structure (seeded), with the method's trainable set.
    public func build(seed: UInt64) -> SegmentationModel {
        var generator = RandomGenerator(seed: seed)
        let backbone = VisionTransformer(config: self.backbone, generator: &generator)
        // Built before the head, which sizes its input convs from the neck's levels.
        let neck = self.neck.build(dim: self.backbone.embedDim, depth: self.backbone.depth, patchSize: self.backbone.patchSize,
                                   generator: &generator)
        precondition(taskClasses.count == 1 || self.neck.kind == .none,
                     "ModelSpec: one head per dataset needs neck.kind none (got \(self.neck.kind.rawValue))")
        let heads = taskClasses.map { classes -> SegmentationHead in
            switch self.head.kind {
            case .linear: return LinearHead(dim: self.backbone.embedDim, classes: classes, generator: &generator)
            case .setrNaive:
                return SETRNaiveHead(dim: self.backbone.embedDim, classes: classes, channels: self.head.channels, generator: &generator)
            case .upernet:
                guard let neck else { preconditionFailure("ModelSpec: the upernet head needs a neck (\(self.head.problem(neck: self.neck) ?? ""))") }
                return UPerNetHead(inChannels: neck.levelChannels, channels: self.head.channels, classes: classes,
                                   poolScales: self.head.poolScales, dropout: self.head.dropout, generator: &generator)
            }
        }
        let model = SegmentationModel(backbone: backbone, heads: heads)
        model.neck = neck
        if self.head.kind == .upernet, self.head.auxWeight > 0, let neck {
            model.auxHead = AuxiliaryFCNHead(inChannels: neck.levelChannels[neck.gridLevel], channels: self.head.auxChannels,
                                             classes: classes, generator: &generator)
            model.auxWeight = self.head.auxWeight
        }
        AdapterInjector.apply(adapter, to: model, tasks: taskClasses.count, generator: &generator)
        return model
    }
}
