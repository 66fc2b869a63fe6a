// One AdaRoute adapter (official ParaXAdapter), inserted after a ViT block on the patch tokens.
// Every step below follows shared/fixtures/adaroute_parity/README.md ("Adapter_i") and is numbered
// as there. The router turns the token mean into softmax weights over the E expert slots of each
// group; the mixed weights are per sample (one routing decision per image).
//
// Legend: B batch, L = h·w patch tokens, D width, r rank, E experts, G groups, k kernel size.
import AdaNN
import AdaTensor

public final class AdaRouteAdapter: Module, BlockAdapter {
    public let config: AdaRouteConfig
    /// The shared expert center (owned and named by the model, not by this adapter).
    public let center: ExpertCenter
    public let norm: LayerNorm           // eps 1e-5
    public let normGamma: Tensor         // [D], init 1e-5
    public let dwconv1: DepthwiseConv?   // conv path only
    public let dwconv2: DepthwiseConv?
    public let routerIn: Linear          // router.0: D → h
    public let routerOut: Linear         // router.2: h → E·G
    public let mix: Linear?              // r → nK, per-token softmax over kernel branches (≥ 2 kernels)
    public let convResScale: Tensor?     // [2(nK − 1)]
    public let proj: Linear              // r → r
    public let logitScale: Tensor        // [G] buffer (zeros: router temperature exp(0) = 1)
    public let layerScale: Tensor, layerBias: Tensor, resScale: Tensor, resBias: Tensor // [D]

    public init(dim: Int, center: ExpertCenter, config: AdaRouteConfig, generator: inout RandomGenerator) {
        self.config = config
        self.center = center
        let experts = center.experts
        let r = config.rank, nK = config.kernelSizes.count
        norm = LayerNorm(dim, eps: 1e-5)
        normGamma = Tensor.full([dim], 1e-5, requiresGrad: true)
        dwconv1 = config.usesConvolutions ? DepthwiseConv(channels: dim, kernel: 3, generator: &generator) : nil
        dwconv2 = config.usesConvolutions ? DepthwiseConv(channels: dim, kernel: 3, generator: &generator) : nil
        routerIn = Linear(dim, config.routerHidden, generator: &generator)
        routerOut = Linear(config.routerHidden, experts * config.groups, generator: &generator)
        mix = nK >= 2 ? Linear(r, nK, generator: &generator) : nil
        convResScale = nK >= 2 ? Tensor.ones([2 * (nK - 1)], requiresGrad: true) : nil
        proj = Linear(r, r, generator: &generator)
        logitScale = Tensor.zeros([config.groups])
        layerScale = Tensor.full([dim], config.layerScaleInit, requiresGrad: true)
        layerBias = Tensor.zeros([dim], requiresGrad: true)
        resScale = Tensor.full([dim], config.residualScaleInit, requiresGrad: true)
        resBias = Tensor.zeros([dim], requiresGrad: true)
        super.init()
        // Official init: kaiming_uniform(a=√5) weights (Linear's default), every bias 0.
        for linear in [routerIn, routerOut, proj] + (mix.map { [$0] } ?? []) { linear.bias?.assign(Tensor.zeros([linear.outFeatures])) }
    }

    public override var localParameters: [(String, Tensor)] {
        var out: [(String, Tensor)] = [("norm_gamma", normGamma)]
        if let convResScale { out.append(("conv_res_scale", convResScale)) }
        return out + [("layer_scale", layerScale), ("layer_bias", layerBias), ("res_scale", resScale), ("res_bias", resBias)]
    }
    public override var localBuffers: [(String, Tensor)] { [("logit_scale", logitScale)] }
    public override var children: [(String, Module)] {
        var out: [(String, Module)] = [("norm", norm)]
        if let dwconv1, let dwconv2 { out += [("dwconv1", dwconv1), ("dwconv2", dwconv2)] }
        out += [("router.0", routerIn), ("router.2", routerOut), ("proj", proj)]
        if let mix { out.append(("mix", mix)) }
        return out
    }

    /// x: patch tokens [B, L, D] on an h×w grid → [B, L, D].
    public func callAsFunction(_ x: Tensor, gridHeight h: Int, gridWidth w: Int, context: ForwardContext,
                               name: String) -> Tensor {
        let b = x.shape[0], l = x.shape[1], d = x.shape[2], r = config.rank, e = center.experts
        precondition(l == h * w, "\(name): \(l) tokens do not form a \(h)×\(w) grid")
        let shortcut = x                                                         // 1
        var z = x.adding(norm(x), scaledBy: normGamma)                          // 2
        if let dwconv1 {                                                         // 3
            z = z + dwconv1(z.reshaped([b, h, w, d])).reshaped([b, l, d])
        }
        let gates = routerOut(routerIn(z.mean(axes: [1]), context: context).gelu(), context: context) // 4: [B, E·G]
        context.record("\(name).gates", gates)
        let temperature = logitScale.exp().reshaped([config.groups, 1])
        let weights = (gates.reshaped([b, config.groups, e]) * temperature).softmax() // [B, G, E]
        func group(_ j: Int) -> Tensor { weights.slice(axis: 1, range: j..<(j + 1)).reshaped([b, e]) }
        if context.probe != nil {                                               // 5: mixed inside 6 and 10
            context.record("\(name).projA_mixed", ExpertCenter.mix(center.projA, weights: group(0))) // [B, r, D]
            context.record("\(name).projB_mixed", ExpertCenter.mix(center.projB, weights: group(1))) // [B, D, r]
        }
        var u = z.routedLinear(bank: center.projA, weights: group(0))           // 6: [B, L, r]
        var v = u                                                               // 7: token path
        if config.usesConvolutions {
            let grid = u.reshaped([b, h, w, r])
            var outputs: [Tensor] = []
            for (i, kernel) in center.kernels.enumerated() {
                let mixedKernel = ExpertCenter.mix(kernel.weight, weights: group(2 + i)) // [B, r, 1, k, k]
                var input = grid
                if i > 0, let s = convResScale {
                    input = s.slice(axis: 0, range: (2 * (i - 1))..<(2 * (i - 1) + 1)) * grid
                        + s.slice(axis: 0, range: (2 * (i - 1) + 1)..<(2 * i)) * outputs[i - 1]
                }
                outputs.append(input.depthwiseConv2d(weight: mixedKernel, bias: nil))
            }
            if let mix {
                let flat = outputs.map { $0.reshaped([b, l, r]) }
                let alpha = mix(flat.dropFirst().reduce(flat[0], +), context: context).softmax() // [B, L, nK]
                v = alpha.slice(axis: 2, range: 0..<1) * flat[0]
                for i in 1..<flat.count { v = v + alpha.slice(axis: 2, range: i..<(i + 1)) * flat[i] }
            } else {
                v = outputs[0].reshaped([b, l, r])
            }
        }
        u = v + u                                                               // 8 (token path: 2u, as official)
        u = u + proj(u, context: context)                                       // 9
        var y = u.gelu().routedLinear(bank: center.projB, weights: group(1))    // 10: [B, L, D]
        if let dwconv2 {                                                        // 11
            y = y + dwconv2(y.reshaped([b, h, w, d])).reshaped([b, l, d])
        }
        return Tensor.affineSum(y, scale: layerScale, shift: layerBias,         // 12
                                shortcut, scale: resScale, shift: resBias)
    }
}
