// LoRA (Hu et al., arXiv 2106.09685) with PEFT's semantics and names, plugged into a ViT Linear:
//
//   y = x·Wᵀ + b + (alpha/r) · dropout(x)·Aᵀ·Bᵀ
//
// `<linear>.lora_A` [r, in] starts kaiming_uniform(a=√5) = U(±1/√in), `<linear>.lora_B` [out, r] starts 0,
// so a fresh adapter leaves the layer exactly unchanged. Dropout (training only) touches the LoRA path
// alone, as PEFT's lora_dropout. `merge` folds (alpha/r)·B·A into the frozen weight for inference/export.
//
// The layer is one fused op: the base GEMM, then the rank-r update accumulated into the same output
// by a second GEMM (alpha = scaling, beta = 1) — no extra [M, out] temporaries or elementwise passes.
//
// Legend: M rows (all tokens of the batch), K in features, N out features, r rank.
import AdaNN
import AdaTensor

/// A ViT linear LoRA can adapt, by the short names used in configs (PEFT's target_modules).
public enum LoRATarget: String, Codable, CaseIterable, Sendable {
    case qkv   // blocks.{i}.attn.qkv   D → 3D
    case proj  // blocks.{i}.attn.proj  D → D
    case fc1   // blocks.{i}.mlp.fc1    D → hidden
    case fc2   // blocks.{i}.mlp.fc2    hidden → D
}

public struct LoRAConfig: Equatable, Sendable, Codable {
    /// Rank r of the update B·A.
    public var rank: Int = 8
    /// lora_alpha; nil = rank (scaling 1).
    public var alpha: Float? = nil
    /// lora_dropout on the LoRA path's input, training only.
    public var dropout: Float = 0
    /// Which linears of every block get an adapter.
    public var targets: [LoRATarget] = [.qkv]

    public init(rank: Int = 8, alpha: Float? = nil, dropout: Float = 0, targets: [LoRATarget] = [.qkv]) {
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        self.targets = targets
    }

    /// alpha / r, the factor on B·A.
    public var scaling: Float { (alpha ?? Float(rank)) / Float(rank) }

    /// Missing keys keep their defaults, so a config may give only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? 8
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha)
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0
        targets = try c.decodeIfPresent([LoRATarget].self, forKey: .targets) ?? [.qkv]
    }
}

/// One LoRA update on a Linear (named `lora_A`, `lora_B` next to the Linear's weight).
public final class LoRAAdapter: Module, LinearAdapter {
    public let loraA: Tensor   // [r, K]
    public let loraB: Tensor   // [N, r]
    public let scaling: Float
    public let dropout: Float
    /// False: the layer computes its base output only (PEFT's disable_adapter), B·A kept unmerged.
    public var isEnabled = true

    public var rank: Int { loraA.shape[0] }

    public init(inFeatures: Int, outFeatures: Int, config: LoRAConfig, generator: inout RandomGenerator) {
        precondition(config.rank > 0, "LoRA rank must be positive, got \(config.rank)")
        precondition(config.dropout >= 0 && config.dropout < 1, "LoRA dropout must be in [0, 1), got \(config.dropout)")
        loraA = Tensor.kaimingUniform([config.rank, inFeatures], fanIn: inFeatures, using: &generator, requiresGrad: true)
        loraB = Tensor.zeros([outFeatures, config.rank], requiresGrad: true)
        scaling = config.scaling
        dropout = config.dropout
    }

    public override var localParameters: [(String, Tensor)] { [("lora_A", loraA), ("lora_B", loraB)] }

    /// x [..., K] → [..., N].
    public func forward(_ x: Tensor, base: Linear, context: ForwardContext) -> Tensor {
        guard isEnabled else { return base.base(x) }
        precondition(loraA.shape[1] == base.inFeatures && loraB.shape[0] == base.outFeatures,
                     "LoRA A \(loraA.shape) / B \(loraB.shape) do not fit a Linear \(base.weight.shape)")
        let source = isTraining && dropout > 0 ? x.dropout(probability: dropout, generator: &context.generator) : x
        return x.loraLinear(weight: base.weight, bias: base.bias, loraInput: source, a: loraA, b: loraB, scaling: scaling)
    }

    /// W ← W + scaling·B·A, then detaches itself: the Linear computes the same map without the adapter.
    public func merge(into linear: Linear) {
        precondition(linear.adapter === self, "LoRA merge: this adapter is not the one plugged into the Linear")
        precondition(linear.weight.shape == [loraB.shape[0], loraA.shape[1]],
                     "LoRA merge: B \(loraB.shape)·A \(loraA.shape) does not match weight \(linear.weight.shape)")
        let n = loraB.shape[0], k = loraA.shape[1], r = rank
        BLAS.sgemm(transposeA: false, transposeB: false, m: n, n: k, k: r, alpha: scaling, a: loraB.data, lda: r,
                   b: loraA.data, ldb: k, beta: 1, c: linear.weight.data, ldc: k)
        linear.adapter = nil
    }
}

public enum LoRA {
    /// The Linear of `block` a target names.
    public static func linear(_ target: LoRATarget, in block: Block) -> Linear {
        switch target {
        case .qkv: return block.attn.qkv
        case .proj: return block.attn.proj
        case .fc1: return block.mlp.fc1
        case .fc2: return block.mlp.fc2
        }
    }

    /// Plugs a fresh adapter into every targeted linear of every block (block by block, targets in
    /// the order qkv, proj, fc1, fc2 whatever the config's order, so the init is reproducible).
    public static func inject(_ config: LoRAConfig, into backbone: VisionTransformer, generator: inout RandomGenerator) {
        precondition(!config.targets.isEmpty, "LoRA needs at least one target (qkv, proj, fc1, fc2)")
        let chosen = Set(config.targets)
        for block in backbone.blocks {
            for target in LoRATarget.allCases where chosen.contains(target) {
                let layer = linear(target, in: block)
                precondition(layer.adapter == nil, "LoRA: \(target.rawValue) already has an adapter")
                layer.adapter = LoRAAdapter(inFeatures: layer.inFeatures, outFeatures: layer.outFeatures,
                                            config: config, generator: &generator)
            }
        }
    }

    /// Merges every LoRA adapter below `root` into its Linear's weight; returns how many were merged.
    @discardableResult
    public static func mergeAll(in root: Module) -> Int {
        var merged = 0
        for (_, module) in root.namedModules() {
            if let layer = module as? Linear, let adapter = layer.adapter as? LoRAAdapter {
                adapter.merge(into: layer)
                merged += 1
            }
        }
        return merged
    }
}

extension Tensor {
    /// y = x·Wᵀ + b + scaling·(xd·Aᵀ)·Bᵀ over the last axis, xd the (dropped-out) LoRA input — pass
    /// x itself when there is no dropout. x, xd [..., K]; W [N, K]; b [N]; A [r, K]; B [N, r].
    /// The base part is computed exactly as `linear`, so with B = 0 the output equals it bit for bit.
    public func loraLinear(weight: Tensor, bias: Tensor?, loraInput xd: Tensor, a: Tensor, b: Tensor,
                           scaling s: Float) -> Tensor {
        let x = self
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                     "loraLinear: input \(x.shape) does not match weight \(weight.shape)")
        let k = weight.shape[1], n = weight.shape[0], m = x.count / max(k, 1)
        precondition(a.rank == 2 && a.shape[1] == k && b.shape == [n, a.shape[0]],
                     "loraLinear: A \(a.shape) must be [r, \(k)] and B \(b.shape) [\(n), r]")
        precondition(xd.shape == x.shape, "loraLinear: LoRA input \(xd.shape) differs from input \(x.shape)")
        if let bias { precondition(bias.shape == [n], "loraLinear: bias \(bias.shape) for \(n) outputs") }
        let r = a.shape[0]
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [n])
        Tensor.affineForward(x, weight: weight, bias: bias, into: y, rows: m)
        let t = Tensor(uninitializedShape: [m, r])                               // xd·Aᵀ, kept for dB
        BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: r, k: k, a: xd.data, lda: k,
                   b: a.data, ldb: k, beta: 0, c: t.data, ldc: r)
        BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: n, k: r, alpha: s, a: t.data, lda: r,
                   b: b.data, ldb: r, beta: 1, c: y.data, ldc: n)

        var inputs = [x, weight, a, b]
        if xd !== x { inputs.append(xd) }
        if let bias { inputs.append(bias) }
        y.record("lora_linear", inputs) { gy in
            // Base: dx += gy·W, dW += gyᵀ·x, db += Σ_rows gy.
            // LoRA: gt = s·gy·B [M, r]; dxd += gt·A; dA += gtᵀ·xd; dB += s·gyᵀ·t.
            Tensor.affineBackward(gy, x: x, weight: weight, bias: bias, rows: m)
            b.accumulateGrad { gb in
                BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: r, k: m, alpha: s, a: gy.data, lda: n,
                           b: t.data, ldb: r, beta: 1, c: gb, ldc: r)
            }
            guard xd.needsGrad || a.needsGrad else { return }
            let gt = Tensor(uninitializedShape: [m, r])
            BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: r, k: n, alpha: s, a: gy.data, lda: n,
                       b: b.data, ldb: r, beta: 0, c: gt.data, ldc: r)
            xd.accumulateGrad { gx in
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: r, a: gt.data, lda: r,
                           b: a.data, ldb: k, beta: 1, c: gx, ldc: k)
            }
            a.accumulateGrad { ga in
                BLAS.sgemm(transposeA: true, transposeB: false, m: r, n: k, k: m, a: gt.data, lda: r,
                           b: xd.data, ldb: k, beta: 1, c: ga, ldc: k)
            }
        }
        return y
    }
}
