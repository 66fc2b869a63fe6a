// Parameter-efficient methods, each selected by `adapter.method` and applied to a built model the same
// way: freeze the backbone, inject the method's modules, leave the head trainable. Registered by name
// (as PEFT's register_peft_method), so every method is compared on equal terms.
import AdaNN
import AdaTensor

public enum AdapterMethodKind: String, Codable, CaseIterable, Sendable {
    /// AdaRoute / ParaX: routed adapters after every block over one shared expert center.
    case adaroute
    /// Head only (linear probe): the whole backbone frozen.
    case linear
    /// Full fine-tuning: every parameter trains.
    case full
}

public struct AdapterSettings: Equatable, Sendable, Codable {
    public var method: AdapterMethodKind = .adaroute
    public var adaroute = AdaRouteConfig()

    public init(method: AdapterMethodKind = .adaroute, adaroute: AdaRouteConfig = AdaRouteConfig()) {
        self.method = method
        self.adaroute = adaroute
    }
}

public enum AdapterInjector {
    /// Freezes what the method freezes and adds its modules. The head is always trainable.
    public static func apply(_ settings: AdapterSettings, to model: SegmentationModel, generator: inout RandomGenerator) {
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
        }
        model.head.setTrainable(true)
    }
}
