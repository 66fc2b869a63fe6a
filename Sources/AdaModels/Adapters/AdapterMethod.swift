// Parameter-efficient methods, each selected by `adapter.method` and applied to a built model the same
// way: freeze the backbone, inject the method's modules, leave the neck and heads trainable. Registered by name
// (as PEFT's register_peft_method), so every method is compared on equal terms.
import AdaNN
import AdaTensor

public enum AdapterMethodKind: String, Codable, CaseIterable, Sendable {
    /// AdaRoute / ParaX: routed adapters after every block over one shared expert center.
    case adaroute
    /// LoRA (PEFT semantics) on chosen linears of every block.
    case lora
    /// AdaptFormer: a bottleneck branch in parallel to every block's MLP.
    case adaptformer
    /// MHR / Poly: LoRA whose A and B are mixed per task from a shared inventory of skills.
    case mhr
    /// PaCA: fine-tunes r fixed random input columns of each target linear (no adapter at inference).
    case paca
    /// Head only (linear probe): the whole backbone frozen.
    case linear
    /// Full fine-tuning: every parameter trains.
    case full
}

public struct AdapterSettings: Equatable, Sendable, Codable {
    public var method: AdapterMethodKind = .adaroute
    public var adaroute = AdaRouteConfig()
    public var lora = LoRAConfig()
    public var adaptformer = AdaptFormerConfig()
    public var mhr = MHRConfig()
    public var paca = PaCAConfig()

    public init(method: AdapterMethodKind = .adaroute, adaroute: AdaRouteConfig = AdaRouteConfig(),
                lora: LoRAConfig = LoRAConfig(), adaptformer: AdaptFormerConfig = AdaptFormerConfig(),
                mhr: MHRConfig = MHRConfig(), paca: PaCAConfig = PaCAConfig()) {
        self.method = method
        self.adaroute = adaroute
        self.lora = lora
        self.adaptformer = adaptformer
        self.mhr = mhr
        self.paca = paca
    }

    /// Missing keys keep their defaults: a config names its method and only that method's settings.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        method = try c.decodeIfPresent(AdapterMethodKind.self, forKey: .method) ?? .adaroute
        adaroute = try c.decodeIfPresent(AdaRouteConfig.self, forKey: .adaroute) ?? AdaRouteConfig()
        lora = try c.decodeIfPresent(LoRAConfig.self, forKey: .lora) ?? LoRAConfig()
        adaptformer = try c.decodeIfPresent(AdaptFormerConfig.self, forKey: .adaptformer) ?? AdaptFormerConfig()
        mhr = try c.decodeIfPresent(MHRConfig.self, forKey: .mhr) ?? MHRConfig()
        paca = try c.decodeIfPresent(PaCAConfig.self, forKey: .paca) ?? PaCAConfig()
    }
}

public enum AdapterInjector {
    /// Freezes what the method freezes and adds its modules. The neck and heads are always trainable.
    /// `tasks`: rows of MHR's routing logits (one per dataset of a multi-dataset run).
    public static func apply(_ settings: AdapterSettings, to model: SegmentationModel, tasks: Int = 1,
                             generator: inout RandomGenerator) {
        model.backbone.setTrainable(settings.method == .full)
        switch settings.method {
        case .full, .linear:
            break
        case .adaroute:
            let dim = model.backbone.config.embedDim
            let experts = settings.adaroute.experts ?? model.backbone.blocks.count
            let center = ExpertCenter(dim: dim, config: settings.adaroute, experts: experts, generator: &generator)
            model.expert = center
            model.blockAdapters = model.backbone.blocks.map { _ in
                AdaRouteAdapter(dim: dim, center: center, config: settings.adaroute, generator: &generator)
            }
        case .lora:
            LoRA.inject(settings.lora, into: model.backbone, generator: &generator)
        case .adaptformer:
            AdaptFormer.inject(settings.adaptformer, into: model.backbone, generator: &generator)
        case .mhr:
            MHR.inject(settings.mhr, tasks: tasks, into: model.backbone, generator: &generator)
        case .paca:
            PaCA.inject(settings.paca, into: model.backbone, generator: &generator)
        }
        for head in model.heads { head.setTrainable(true) }
        model.neck?.setTrainable(true)
        model.auxHead?.setTrainable(true)
        model.setTraining(model.isTraining) // new modules follow the model's train/eval mode
    }
}
