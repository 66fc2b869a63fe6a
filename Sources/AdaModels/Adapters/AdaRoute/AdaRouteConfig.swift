// AdaRoute (ParaX) settings — see shared/specs/adaroute.md. Defaults follow the paper's ViT port
// (rank 128, router hidden 16, kernels 3/5/7, one expert slot per block).

public struct AdaRouteConfig: Equatable, Sendable, Codable {
    /// Bottleneck width r.
    public var rank: Int = 128
    /// Hidden width h of the router MLP.
    public var routerHidden: Int = 16
    /// Routed depthwise kernel sizes; empty = token path (no convolutions at all).
    public var kernelSizes: [Int] = [3, 5, 7]
    /// Expert slots E in the shared center; nil = the ViT's depth.
    public var experts: Int? = nil
    /// Initial layer_scale (adapter branch) and res_scale (shortcut).
    public var layerScaleInit: Float = 1
    public var residualScaleInit: Float = 1

    public init(rank: Int = 128, routerHidden: Int = 16, kernelSizes: [Int] = [3, 5, 7], experts: Int? = nil) {
        self.rank = rank
        self.routerHidden = routerHidden
        self.kernelSizes = kernelSizes
        self.experts = experts
    }

    enum CodingKeys: String, CodingKey { case rank, routerHidden, kernelSizes, experts, layerScaleInit, residualScaleInit }

    /// Missing keys take their defaults, so a partial `adaroute:` section decodes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = AdaRouteConfig()
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? d.rank
        routerHidden = try c.decodeIfPresent(Int.self, forKey: .routerHidden) ?? d.routerHidden
        kernelSizes = try c.decodeIfPresent([Int].self, forKey: .kernelSizes) ?? d.kernelSizes
        experts = try c.decodeIfPresent(Int.self, forKey: .experts)
        layerScaleInit = try c.decodeIfPresent(Float.self, forKey: .layerScaleInit) ?? d.layerScaleInit
        residualScaleInit = try c.decodeIfPresent(Float.self, forKey: .residualScaleInit) ?? d.residualScaleInit
    }

    public var usesConvolutions: Bool { !kernelSizes.isEmpty }
    /// Routing groups: projA, projB, then one per kernel size.
    public var groups: Int { 2 + kernelSizes.count }
}
