// Which neck turns the ViT's single stride-p map into a pyramid, and its settings (config `neck:`).
import AdaNN
import AdaTensor

public enum NeckKind: String, Codable, CaseIterable, Sendable {
    /// No neck: the head reads the final-norm tokens (linear, SETR-naive).
    case none
    /// DEIMv2's Spatial Tuning Adapter: 3 taps resized to ×2/×1/×½ + a tiny CNN detail branch, fused.
    case sta
    /// mmseg's Feature2Pyramid (ViTDet-style): 4 taps rescaled ×4/×2/×1/×½ by deconvs and max-pooling.
    case feature2pyramid
}

public struct NeckSpec: Equatable, Sendable, Codable {
    public var kind: NeckKind = .none
    /// Tapped block indices (0-based); nil = the neck's default for the depth.
    public var taps: [Int]? = nil
    /// Pass taps through the backbone's final LayerNorm (DEIMv2's DINOv3 path does).
    public var tapNorm: Bool = true
    /// STA detail-branch width c (its levels have 2c, 4c, 4c channels).
    public var detailChannels: Int = 16
    /// STA output channels per level; nil = the ViT width D.
    public var hidden: Int? = nil

    public init(kind: NeckKind = .none, taps: [Int]? = nil, tapNorm: Bool = true, detailChannels: Int = 16, hidden: Int? = nil) {
        self.kind = kind
        self.taps = taps
        self.tapNorm = tapNorm
        self.detailChannels = detailChannels
        self.hidden = hidden
    }

    enum CodingKeys: String, CodingKey { case kind, taps, tapNorm, detailChannels, hidden }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        kind = try c.decodeIfPresent(NeckKind.self, forKey: .kind) ?? .none
        taps = try c.decodeIfPresent([Int].self, forKey: .taps)
        tapNorm = try c.decodeIfPresent(Bool.self, forKey: .tapNorm) ?? true
        detailChannels = try c.decodeIfPresent(Int.self, forKey: .detailChannels) ?? 16
        hidden = try c.decodeIfPresent(Int.self, forKey: .hidden)
    }

    /// How many taps the neck reads.
    public var tapCount: Int {
        switch kind {
        case .none: return 0
        case .sta: return 3
        case .feature2pyramid: return 4
        }
    }

    /// The tapped blocks for a ViT of `depth` blocks: the configured list, or the default —
    /// STA: depth/2 − 1, 2·depth/3, depth − 1 (5, 8, 11 for 12 blocks, as DEIMv2 taps DINOv3 ViT-S);
    /// Feature2Pyramid: depth·(1/3, 1/2, 2/3, 1) − 1 (3, 5, 7, 11, mmseg's ViT-B/MAE recipe).
    /// A depth too shallow for distinct defaults takes its last blocks.
    public func resolvedTaps(depth: Int) -> [Int] {
        if let taps { return taps }
        let wanted: [Int]
        switch kind {
        case .none: return []
        case .sta: wanted = [depth / 2 - 1, 2 * depth / 3, depth - 1]
        case .feature2pyramid: wanted = [2, 3, 4].map { (depth * $0 + 3) / 6 - 1 } + [depth - 1] // round(depth·k/6) − 1
        }
        let distinct = zip(wanted, wanted.dropFirst()).allSatisfy { $0 < $1 } && wanted[0] >= 0
        if distinct { return wanted }
        let n = min(wanted.count, depth)
        return Array((depth - n)..<depth) + Array(repeating: depth - 1, count: wanted.count - n)
    }

    /// Why these settings cannot build a neck for a ViT of this depth, or nil.
    public func problem(depth: Int) -> String? {
        guard kind != .none else { return nil }
        let t = resolvedTaps(depth: depth)
        if let bad = t.first(where: { !(0..<depth).contains($0) }) {
            return "neck.taps: block \(bad) does not exist (the ViT has blocks 0…\(depth - 1))"
        }
        if kind == .sta && t.count != 1 && t.count != 3 {
            return "neck.taps: STA reads 3 taps (or 1, used for every level), got \(t.count): \(t)"
        }
        if kind == .feature2pyramid && t.count != 4 {
            return "neck.taps: Feature2Pyramid reads 4 taps, got \(t.count): \(t)"
        }
        if detailChannels < 1 { return "neck.detail_channels must be ≥ 1, got \(detailChannels)" }
        if let hidden, hidden < 1 { return "neck.hidden must be ≥ 1, got \(hidden)" }
        return nil
    }

    /// A freshly initialised neck for a ViT of width `dim` and `depth` blocks (nil for `.none`).
    public func build(dim: Int, depth: Int, patchSize: Int, generator: inout RandomGenerator) -> FeatureNeck? {
        switch kind {
        case .none: return nil
        case .sta:
            return STANeck(dim: dim, patchSize: patchSize, taps: resolvedTaps(depth: depth), tapNorm: tapNorm, detailChannels: detailChannels,
                           hidden: hidden ?? dim, generator: &generator)
        case .feature2pyramid:
            return Feature2Pyramid(dim: dim, taps: resolvedTaps(depth: depth), tapNorm: tapNorm, generator: &generator)
        }
    }
}
