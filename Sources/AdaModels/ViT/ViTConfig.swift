// Vision Transformer shapes as timm defines them (vision_transformer.py).

public struct ViTConfig: Equatable, Sendable, Codable {
    public var embedDim: Int
    public var depth: Int
    public var heads: Int
    public var mlpRatio: Double
    public var patchSize: Int
    /// The training image size (height, width); sets the position-embedding grid.
    public var imageHeight: Int
    public var imageWidth: Int
    public var qkvBias: Bool = true
    public var layerNormEps: Float = 1e-6
    public var dropPathRate: Float = 0

    public init(embedDim: Int, depth: Int, heads: Int, mlpRatio: Double = 4, patchSize: Int = 16,
                imageHeight: Int = 224, imageWidth: Int = 224, dropPathRate: Float = 0) {
        self.embedDim = embedDim
        self.depth = depth
        self.heads = heads
        self.mlpRatio = mlpRatio
        self.patchSize = patchSize
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.dropPathRate = dropPathRate
    }

    public var gridHeight: Int { imageHeight / patchSize }
    public var gridWidth: Int { imageWidth / patchSize }
    public var mlpHidden: Int { Int(Double(embedDim) * mlpRatio) }

    /// timm presets: vit_{tiny,small,base,large}_patch{16,14}.
    public static func preset(_ name: String) -> ViTConfig? {
        let sizes: [String: (Int, Int, Int)] = [
            "tiny": (192, 12, 3), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16),
        ]
        let parts = name.split(separator: "_")
        // timm names: vit_small, vit_small_patch16, vit_small_patch16_224 (a trailing image size is accepted)
        guard (2...4).contains(parts.count), parts[0] == "vit", let size = sizes[String(parts[1])] else { return nil }
        if parts.count == 4 && Int(parts[3]) == nil { return nil }
        var patch = 16
        if parts.count >= 3 {
            guard parts[2].hasPrefix("patch"), let p = Int(parts[2].dropFirst(5)), p > 0 else { return nil }
            patch = p
        }
        return ViTConfig(embedDim: size.0, depth: size.1, heads: size.2, patchSize: patch,
                         imageHeight: patch * 14, imageWidth: patch * 14)
    }

    public static let presetNames = ["vit_tiny_patch16", "vit_small_patch16", "vit_base_patch16", "vit_large_patch16",
                                     "vit_tiny_patch14", "vit_small_patch14", "vit_base_patch14", "vit_large_patch14"]
}
