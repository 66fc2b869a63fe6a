// Optimizers over named parameters, with per-group learning-rate scale and weight decay
// (no-decay groups for norms, biases, position embeddings, …). State is keyed by parameter name so it
// can be checkpointed and restored.
import AdaTensor

public struct ParameterGroup {
    public var parameters: [(String, Tensor)]
    public var weightDecay: Float
    /// Multiplies the scheduled learning rate (e.g. MHR's routing logits at a higher rate).
    public var learningRateScale: Float

    public init(parameters: [(String, Tensor)], weightDecay: Float, learningRateScale: Float = 1) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        self.learningRateScale = learningRateScale
    }
}

public protocol Optimizer: AnyObject {
    var groups: [ParameterGroup] { get }
    /// One update from the parameters' accumulated gradients (parameters without a gradient are skipped).
    func step(learningRate: Float)
    /// Named state tensors for checkpoints (e.g. "exp_avg.blocks.0.attn.qkv.weight").
    func stateTensors() -> [(String, Tensor)]
    /// Restores what `stateTensors()` saved.
    func loadState(_ tensors: [String: Tensor], stepCount: Int)
    var stepCount: Int { get set }
}

/// AdamW (Loshchilov & Hutter), exactly as torch.optim.AdamW: decoupled decay p ← p·(1 − lr·wd), then
/// p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps).
public final class AdamW: Optimizer {
    public let groups: [ParameterGroup]
    public let beta1: Float, beta2: Float, eps: Float
    public var stepCount = 0
    private var firstMoment: [String: Tensor] = [:]
    private var secondMoment: [String: Tensor] = [:]

    public init(groups: [ParameterGroup], beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8) {
        self.groups = groups
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
    }

    public func step(learningRate: Float) {
        stepCount += 1
        let t = Float(stepCount)
        let correction1 = 1 - powf(beta1, t), correction2Root = (1 - powf(beta2, t)).squareRoot()
        for group in groups {
            let lr = learningRate * group.learningRateScale
            let decay = 1 - lr * group.weightDecay
            let stepSize = lr / correction1
            for (name, p) in group.parameters {
                guard let g = p.grad else { continue }
                let m = firstMoment[name] ?? Tensor.zeros(p.shape), v = secondMoment[name] ?? Tensor.zeros(p.shape)
                firstMoment[name] = m
                secondMoment[name] = v
                let pp = p.data, pg = g.data, pm = m.data, pv = v.data
                let (b1, b2, e) = (beta1, beta2, eps)
                Parallel.chunks(p.count, minimumChunk: 16384) { range in
                    for i in range {
                        pp[i] *= decay
                        pm[i] = b1 * pm[i] + (1 - b1) * pg[i]
                        pv[i] = b2 * pv[i] + (1 - b2) * pg[i] * pg[i]
                        pp[i] -= stepSize * pm[i] / (pv[i].squareRoot() / correction2Root + e)
                    }
                }
            }
        }
    }

    public func stateTensors() -> [(String, Tensor)] {
        firstMoment.sorted { $0.key < $1.key }.map { ("exp_avg.\($0.key)", $0.value) }
            + secondMoment.sorted { $0.key < $1.key }.map { ("exp_avg_sq.\($0.key)", $0.value) }
    }

    /// Restores moments saved by `stateTensors()`.
    public func loadState(_ tensors: [String: Tensor], stepCount: Int) {
        self.stepCount = stepCount
        for (key, value) in tensors {
            if key.hasPrefix("exp_avg_sq.") { secondMoment[String(key.dropFirst("exp_avg_sq.".count))] = value }
            else if key.hasPrefix("exp_avg.") { firstMoment[String(key.dropFirst("exp_avg.".count))] = value }
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif

/// SGD with momentum as torch.optim.SGD: g ← g + wd·p (L2, coupled); buf ← μ·buf + g; p ← p − lr·buf
/// (Nesterov: p ← p − lr·(g + μ·buf)).
public final class SGD: Optimizer {
    public let groups: [ParameterGroup]
    public let momentum: Float
    public let nesterov: Bool
    public var stepCount = 0
    private var buffers: [String: Tensor] = [:]

    public init(groups: [ParameterGroup], momentum: Float = 0.9, nesterov: Bool = false) {
        self.groups = groups
        self.momentum = momentum
        self.nesterov = nesterov
    }

    public func step(learningRate: Float) {
        stepCount += 1
        let first = stepCount == 1
        for group in groups {
            let lr = learningRate * group.learningRateScale, wd = group.weightDecay, mu = momentum, nesterov = nesterov
            for (name, p) in group.parameters {
                guard let g = p.grad else { continue }
                let buffer = buffers[name] ?? Tensor.zeros(p.shape)
                buffers[name] = buffer
                let pp = p.data, pg = g.data, pb = buffer.data
                Parallel.chunks(p.count, minimumChunk: 16384) { range in
                    for i in range {
                        let d = pg[i] + wd * pp[i]
                        pb[i] = mu == 0 ? d : (first ? d : mu * pb[i] + d) // PyTorch: the first step copies d
                        pp[i] -= lr * (nesterov ? d + mu * pb[i] : pb[i])
                    }
                }
            }
        }
    }

    public func stateTensors() -> [(String, Tensor)] {
        buffers.sorted { $0.key < $1.key }.map { ("momentum_buffer.\($0.key)", $0.value) }
    }

    public func loadState(_ tensors: [String: Tensor], stepCount: Int) {
        self.stepCount = stepCount
        for (key, value) in tensors where key.hasPrefix("momentum_buffer.") {
            buffers[String(key.dropFirst("momentum_buffer.".count))] = value
        }
    }
}
