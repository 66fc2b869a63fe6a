// Weight-decay groups: parameters whose name contains a `no_decay` pattern (norms, biases, position
// embeddings, … as configured) get weight decay 0, the rest the configured decay.
import AdaNN
import AdaTensor

public enum ParameterGroups {
    public static func make(_ parameters: [(String, Tensor)], weightDecay: Float, noDecay: [String]) -> [ParameterGroup] {
        let exempt = parameters.filter { p in noDecay.contains { p.0.contains($0) } }
        let decayed = parameters.filter { p in !noDecay.contains { p.0.contains($0) } }
        return [ParameterGroup(parameters: decayed, weightDecay: weightDecay),
                ParameterGroup(parameters: exempt, weightDecay: 0)].filter { !$0.parameters.isEmpty }
    }

    /// - routing: parameters with their own learning rate and decay (MHR's routing logits: lr 0.1, wd 0);
    ///   they are taken out of `parameters`' decay groups. Their scheduled rate is `learningRate/train.lr` ×
    ///   the schedule, so warm-up and decay apply to them too.
    public static func optimizer(for train: TrainSection, parameters: [(String, Tensor)],
                                 routing: (names: Set<String>, learningRate: Float, weightDecay: Float)? = nil) -> Optimizer {
        let special = routing.map { r in parameters.filter { r.names.contains($0.0) } } ?? []
        let regular = routing.map { r in parameters.filter { !r.names.contains($0.0) } } ?? parameters
        var groups = make(regular, weightDecay: Float(train.weightDecay), noDecay: train.noDecay)
        if let routing, !special.isEmpty {
            groups.append(ParameterGroup(parameters: special, weightDecay: routing.weightDecay,
                                         learningRateScale: routing.learningRate / Float(train.lr)))
        }
        switch train.optimizer {
        case .adamw: return AdamW(groups: groups, beta1: Float(train.betas[0]), beta2: Float(train.betas[1]), eps: Float(train.eps))
        case .sgd: return SGD(groups: groups, momentum: Float(train.momentum))
        }
    }

    /// Global L2 norm of all gradients; scales them to `maxNorm` when larger. Returns the norm before clipping.
    @discardableResult
    public static func clipGradients(_ parameters: [(String, Tensor)], maxNorm: Double?) -> Double {
        var total = 0.0
        for (_, p) in parameters { if let g = p.grad { total += Double(Vector.dot(g.data, g.data, count: g.count)) } }
        let norm = total.squareRoot()
        if let maxNorm, norm > maxNorm {
            let scale = Float(maxNorm / (norm + 1e-6))
            for (_, p) in parameters { if let g = p.grad { Vector.scale(g.data, by: scale, count: g.count) } }
        }
        return norm
    }
}
