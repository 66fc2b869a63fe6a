// Vision Transformer sizes as timm defines them (vision_transformer.py).

public struct ViTPreset: Equatable, Sendable {
    public let name: String
    public let embedDim: Int
    public let depth: Int
    public let heads: Int
    public let mlpRatio: Int

    public static let tiny = ViTPreset(name: "vit_tiny", embedDim: 192, depth: 12, heads: 3, mlpRatio: 4)
    public static let small = ViTPreset(name: "vit_small", embedDim: 384, depth: 12, heads: 6, mlpRatio: 4)
    public static let base = ViTPreset(name: "vit_base", embedDim: 768, depth: 12, heads: 12, mlpRatio: 4)
    public static let large = ViTPreset(name: "vit_large", embedDim: 1024, depth: 24, heads: 16, mlpRatio: 4)

    public static let all: [ViTPreset] = [.tiny, .small, .base, .large]
}
