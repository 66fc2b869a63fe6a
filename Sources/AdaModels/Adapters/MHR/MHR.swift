// MHR (Multi-Head adapter Routing, Caccia et al., arXiv 2211.03831) and Poly (Ponti et al., arXiv
// 2202.13914 — MHR with one head) on a ViT Linear, as microsoft/mttl at mhr-camera-ready
// (shared/specs/mhr.md; every equation as in shared/fixtures/seeds_parity/README.md, "mhr_lora"):
//
//   p = σ(Z[t_b])  viewed [h, S]   (training with relaxed Bernoulli: σ((ℓ + log u − log(1−u)) / τ))
//   w[q, s] = p[q, s] / (Σ_s p[q, s] + 1e-12)
//   Amix = Σ_s w[q, s]·A[q, s] → [D_in, r]          (head q owns input rows q·D_in/h …)
//   Bmix = Σ_s w[q, s]·B[q, s] → [r, h, D_out/h] → [r, D_out]   (head q owns a block of output columns)
//   y = x·Wᵀ + b + (alpha/r)·(x·Amix)·Bmix            on every token of sample b (CLS included)
//
// The factors A and B are mixed separately, never their product. Everything is composed of recorded ops
// (slice, sigmoid, sum, div, batched matmul, permute, reshape), so gradients reach x, A, B and Z by
// construction. When every sample has the same task and no noise is drawn, the mixture is computed
// once and applied as one fused LoRA GEMM; otherwise each sample gets its own mixture (per-sample GEMMs).
//
// Names (next to the Linear's weight, like PEFT's lora_A): `<linear>.lora_a` [h, S, D_in/h, r],
// `<linear>.lora_b` [h, S, r, D_out/h], `<linear>.module_logits` [T, h·S] (finegrained: one per layer).
// Coarsegrained: one Z for the whole model, registered (named) once, by the first adapted linear
// (`blocks.0.attn.qkv.module_logits` with the default targets); the other layers use the same tensor.
//
// Legend: B batch, L tokens per sample, D_in / D_out the Linear's sizes, h heads, S skills, r rank,
// T tasks (routing rows), R mixture rows (1 when the batch shares a task, else B).
import AdaNN
import AdaTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Which layers share routing logits.
public enum MHRGranularity: String, Codable, CaseIterable, Sendable {
    /// One Z per adapted linear (mttl's default).
    case finegrained
    /// One Z for the whole model.
    case coarsegrained
}

public struct MHRConfig: Equatable, Sendable, Codable {
    /// S: skills in each layer's inventory.
    public var skills = 4
    /// h: routing heads (Poly = 1); must divide D_in and D_out of every target.
    public var heads = 4
    /// r: LoRA rank of every skill.
    public var rank = 4
    /// lora_alpha; scaling = alpha / rank (mttl camera-ready default 1).
    public var alpha: Float = 1
    public var targets: [LoRATarget] = [.qkv, .proj, .fc1, .fc2]
    public var granularity: MHRGranularity = .finegrained
    /// Gumbel-sigmoid (relaxed Bernoulli) routing noise in training; never in eval.
    public var relaxedBernoulli = false
    /// τ of the relaxed Bernoulli.
    public var temperature: Float = 1
    /// Learning rate of the routing logits' optimizer group (mttl: 0.1), and its weight decay (0).
    public var routingLr: Float = 0.1
    public var routingWeightDecay: Float = 0

    public init(skills: Int = 4, heads: Int = 4, rank: Int = 4, alpha: Float = 1,
                targets: [LoRATarget] = [.qkv, .proj, .fc1, .fc2], granularity: MHRGranularity = .finegrained,
                relaxedBernoulli: Bool = false, temperature: Float = 1, routingLr: Float = 0.1,
                routingWeightDecay: Float = 0) {
        self.skills = skills
        self.heads = heads
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.granularity = granularity
        self.relaxedBernoulli = relaxedBernoulli
        self.temperature = temperature
        self.routingLr = routingLr
        self.routingWeightDecay = routingWeightDecay
    }

    enum CodingKeys: String, CodingKey {
        case skills, heads, rank, alpha, targets, granularity, relaxedBernoulli, temperature, routingLr, routingWeightDecay
    }

    /// Missing keys keep their defaults, so a config may give only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = MHRConfig()
        skills = try c.decodeIfPresent(Int.self, forKey: .skills) ?? d.skills
        heads = try c.decodeIfPresent(Int.self, forKey: .heads) ?? d.heads
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? d.rank
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? d.alpha
        targets = try c.decodeIfPresent([LoRATarget].self, forKey: .targets) ?? d.targets
        granularity = try c.decodeIfPresent(MHRGranularity.self, forKey: .granularity) ?? d.granularity
        relaxedBernoulli = try c.decodeIfPresent(Bool.self, forKey: .relaxedBernoulli) ?? d.relaxedBernoulli
        temperature = try c.decodeIfPresent(Float.self, forKey: .temperature) ?? d.temperature
        routingLr = try c.decodeIfPresent(Float.self, forKey: .routingLr) ?? d.routingLr
        routingWeightDecay = try c.decodeIfPresent(Float.self, forKey: .routingWeightDecay) ?? d.routingWeightDecay
    }

    /// alpha / r, the factor on the mixed update.
    public var scaling: Float { alpha / Float(rank) }

    /// Stops with a message naming the bad setting (fatalError: these come from configs, and -O builds
    /// drop precondition messages).
    public func validate() {
        func require(_ ok: Bool, _ message: @autoclosure () -> String) { if !ok { fatalError(message()) } }
        require(skills > 0, "MHR needs at least one skill, got skills = \(skills)")
        require(heads > 0, "MHR needs at least one head, got heads = \(heads)")
        require(rank > 0, "MHR rank must be positive, got \(rank)")
        require(temperature > 0, "MHR relaxed-Bernoulli temperature must be positive, got \(temperature)")
        require(!targets.isEmpty, "MHR needs at least one target (qkv, proj, fc1, fc2)")
    }
}

/// Routing logits Z [T, h·S], held by reference so layers can share them (coarsegrained) and a new
/// task count can replace the tensor everywhere at once (`MHR.resetRouting`).
public final class MHRRoutingLogits {
    public internal(set) var logits: Tensor
    public var tasks: Int { logits.shape[0] }

    public init(_ logits: Tensor) {
        precondition(logits.rank == 2, "MHR routing logits must be [T, h·S], got \(logits.shape)")
        self.logits = logits
    }

    /// Z ~ U(−1e-3, 1e-3): near-uniform routing (mttl's init, also on a new task).
    public static func initial(tasks: Int, width: Int, generator: inout RandomGenerator) -> MHRRoutingLogits {
        precondition(tasks > 0, "MHR needs at least one task row, got \(tasks)")
        return MHRRoutingLogits(Tensor.uniform([tasks, width], low: -1e-3, high: 1e-3, using: &generator, requiresGrad: true))
    }
}

/// A routed LoRA inventory plugged into one Linear.
public final class MHRAdapter: Module, LinearAdapter {
    public let loraA: Tensor            // [h, S, D_in/h, r]
    public let loraB: Tensor            // [h, S, r, D_out/h]
    public let routing: MHRRoutingLogits
    /// True for the layer that names Z (always, when finegrained).
    public let ownsRouting: Bool
    /// lora_alpha; the update is scaled by alpha / r.
    public let alpha: Float
    public let scaling: Float
    public let relaxedBernoulli: Bool
    public let temperature: Float
    /// The Linear's dotted path (`blocks.0.attn.qkv`): probe names and error messages.
    public let name: String
    /// False: the layer computes its base output only.
    public var isEnabled = true

    public var heads: Int { loraA.shape[0] }
    public var skills: Int { loraA.shape[1] }
    public var rank: Int { loraA.shape[3] }
    public var inFeatures: Int { loraA.shape[0] * loraA.shape[2] }
    public var outFeatures: Int { loraB.shape[0] * loraB.shape[3] }

    /// A fresh inventory: A ~ U(±(1/√3)/√D_in) (mttl's kaiming_uniform(a=√5) on the full D_in), B = 0.
    /// `routing` nil = own logits for `tasks` rows, drawn after A.
    public init(inFeatures: Int, outFeatures: Int, config: MHRConfig, tasks: Int, routing: MHRRoutingLogits? = nil,
                name: String = "", generator: inout RandomGenerator) {
        config.validate()
        let h = config.heads, s = config.skills, r = config.rank
        if inFeatures % h != 0 || outFeatures % h != 0 {
            fatalError("MHR \(name): heads = \(h) must divide the Linear's in (\(inFeatures)) and out (\(outFeatures)) features")
        }
        let bound = (1 / Float(3).squareRoot()) / Float(inFeatures).squareRoot()
        loraA = Tensor.uniform([h, s, inFeatures / h, r], low: -bound, high: bound, using: &generator, requiresGrad: true)
        loraB = Tensor.zeros([h, s, r, outFeatures / h], requiresGrad: true)
        if let routing {
            precondition(routing.logits.shape[1] == h * s,
                         "MHR \(name): shared routing logits \(routing.logits.shape) do not have h·S = \(h * s) columns")
            self.routing = routing
            ownsRouting = false
        } else {
            self.routing = MHRRoutingLogits.initial(tasks: tasks, width: h * s, generator: &generator)
            ownsRouting = true
        }
        alpha = config.alpha
        scaling = config.scaling
        relaxedBernoulli = config.relaxedBernoulli
        temperature = config.temperature
        self.name = name
    }

    public override var localParameters: [(String, Tensor)] {
        [("lora_a", loraA), ("lora_b", loraB)] + (ownsRouting ? [("module_logits", routing.logits)] : [])
    }

    /// The routing rows a batch needs: one row when every sample has the same task and no noise is
    /// drawn (mix once), else one per sample. Empty `taskIds` = task 0 for every sample.
    public func routingRows(taskIds: [Int], batch: Int, noisy: Bool) -> [Int] {
        let tasks = routing.tasks
        // fatalError, not precondition: -O builds drop precondition messages, and task ids come from data.
        for (b, t) in taskIds.enumerated() where t < 0 || t >= tasks {
            fatalError("MHR \(name): task id \(t) of sample \(b) is outside the \(tasks) routing rows (module_logits \(routing.logits.shape)); resize them with MHR.resetRouting or fix the dataset's task id")
        }
        let ids = taskIds.isEmpty ? [Int](repeating: 0, count: batch) : taskIds
        if !noisy, let first = ids.first, ids.allSatisfy({ $0 == first }) { return [first] }
        return ids
    }

    /// w [R, h, S] for the given task rows: sigmoid of Z's rows (plus logistic noise / τ when `noisy`,
    /// drawn from `generator` in row-major order), normalised over the skills of each head.
    public func routingWeights(rows: [Int], noisy: Bool, generator: inout RandomGenerator) -> Tensor {
        precondition(!rows.isEmpty, "MHR \(name): no routing rows")
        let z = routing.logits, h = heads, s = skills
        let picked = rows.map { z.slice(axis: 0, range: $0..<($0 + 1)) }
        var logits = picked.count == 1 ? picked[0] : Tensor.concat(picked, axis: 0)       // [R, h·S]
        if noisy {
            // Logistic noise log u − log(1 − u), u clamped to [eps, 1 − eps] as torch's clamp_probs.
            let eps: Float = 1.1920929e-07
            let noise = Tensor(uninitializedShape: logits.shape)
            for i in 0..<noise.count {
                let u = Swift.min(Swift.max(generator.nextFloat(), eps), 1 - eps)
                noise.data[i] = logf(u) - logf(1 - u)
            }
            logits = logits + noise
            if temperature != 1 { logits = logits * (1 / temperature) }
        }
        let p = logits.sigmoid().reshaped([rows.count, h, s])
        return p / (p.sum(axes: [2], keepDims: true) + 1e-12)
    }

    /// The mixed factors for weights w [R, h, S]: Amix [R, D_in, r], Bmix [R, r, D_out].
    public func mixedFactors(_ w: Tensor) -> (a: Tensor, b: Tensor) {
        let h = heads, s = skills, r = rank, rows = w.shape[0]
        precondition(w.shape == [rows, h, s], "MHR \(name): routing weights \(w.shape) must be [R, \(h), \(s)]")
        let din = inFeatures, dout = outFeatures
        let perHead = w.permuted([1, 0, 2])                                                   // [h, R, S]
        let a = perHead.matmul(loraA.reshaped([h, s, din / h * r]))                         // [h, R, D_in/h·r]
            .reshaped([h, rows, din / h, r]).permuted([1, 0, 2, 3]).reshaped([rows, din, r])
        let b = perHead.matmul(loraB.reshaped([h, s, r * (dout / h)]))                      // [h, R, r·D_out/h]
            .reshaped([h, rows, r, dout / h]).permuted([1, 2, 0, 3]).reshaped([rows, r, dout])
        return (a, b)
    }

    /// x [B, ..., D_in] → [B, ..., D_out].
    public func forward(_ x: Tensor, base: Linear, context: ForwardContext) -> Tensor {
        guard isEnabled else { return base.base(x) }
        precondition(base.inFeatures == inFeatures && base.outFeatures == outFeatures,
                     "MHR \(name): inventory A \(loraA.shape) / B \(loraB.shape) does not fit a Linear \(base.weight.shape)")
        precondition(x.rank >= 2 && x.shape.last == inFeatures, "MHR \(name): input \(x.shape) is not [B, ..., \(inFeatures)]")
        let batch = x.shape[0]
        if !context.taskIds.isEmpty && context.taskIds.count != batch {
            fatalError("MHR \(name): \(context.taskIds.count) task ids for a batch of \(batch) samples (input \(x.shape))")
        }
        let noisy = isTraining && relaxedBernoulli
        let rows = routingRows(taskIds: context.taskIds, batch: batch, noisy: noisy)
        let w = routingWeights(rows: rows, noisy: noisy, generator: &context.generator)
        if context.probe != nil {
            let perSample = Autograd.withNoGrad { rows.count == batch ? w.detached() : w.detached().expanded(to: [batch, heads, skills]) }
            context.record("\(name).routing_weights", perSample)
        }
        let (a, b) = mixedFactors(w)
        let din = inFeatures, dout = outFeatures, r = rank
        if rows.count == 1 {
            // One mixture for the batch: the fused LoRA GEMMs with A [r, D_in], B [D_out, r].
            let aT = a.reshaped([din, r]).transposed(0, 1), bT = b.reshaped([r, dout]).transposed(0, 1)
            return x.loraLinear(weight: base.weight, bias: base.bias, loraInput: x, a: aT, b: bT, scaling: scaling)
        }
        let tokens = x.reshaped([batch, x.count / (batch * din), din])                       // [B, L, D_in]
        let update = tokens.matmul(a).matmul(b * scaling)                                   // [B, L, D_out]
        return base.base(x) + update.reshaped(Array(x.shape.dropLast()) + [dout])
    }
}

public enum MHR {
    /// Every (path, Linear, adapter) of `vit` with an MHR adapter, block by block, targets in the
    /// order qkv, proj, fc1, fc2.
    public static func adapters(in vit: VisionTransformer) -> [(String, Linear, MHRAdapter)] {
        var out: [(String, Linear, MHRAdapter)] = []
        for (i, block) in vit.blocks.enumerated() {
            for target in LoRATarget.allCases {
                let layer = LoRA.linear(target, in: block)
                if let adapter = layer.adapter as? MHRAdapter { out.append((path(block: i, target), layer, adapter)) }
            }
        }
        return out
    }

    /// `blocks.{i}.attn.qkv` etc.: the Linear's name in the ViT (the prefix of its parameters).
    public static func path(block i: Int, _ target: LoRATarget) -> String {
        switch target {
        case .qkv: return "blocks.\(i).attn.qkv"
        case .proj: return "blocks.\(i).attn.proj"
        case .fc1: return "blocks.\(i).mlp.fc1"
        case .fc2: return "blocks.\(i).mlp.fc2"
        }
    }

    /// Injects into every block's target linears; `tasks` = T rows of routing logits. Init order (for
    /// reproducibility): block by block, targets in the order qkv, proj, fc1, fc2, each layer drawing A
    /// then its own Z (finegrained); coarsegrained draws the shared Z with the first layer.
    public static func inject(_ config: MHRConfig, tasks: Int, into vit: VisionTransformer, generator: inout RandomGenerator) {
        config.validate()
        precondition(tasks > 0, "MHR needs at least one task, got \(tasks)")
        let chosen = Set(config.targets)
        var shared: MHRRoutingLogits? = nil
        for (i, block) in vit.blocks.enumerated() {
            for target in LoRATarget.allCases where chosen.contains(target) {
                let layer = LoRA.linear(target, in: block)
                let name = path(block: i, target)
                precondition(layer.adapter == nil, "MHR: \(name) already has an adapter")
                let adapter = MHRAdapter(inFeatures: layer.inFeatures, outFeatures: layer.outFeatures, config: config,
                                         tasks: tasks, routing: config.granularity == .coarsegrained ? shared : nil,
                                         name: name, generator: &generator)
                if config.granularity == .coarsegrained && shared == nil { shared = adapter.routing }
                adapter.setTraining(vit.isTraining)
                layer.adapter = adapter
            }
        }
    }

    /// MHR-μ: per adapted linear, replaces the routed adapter by one trainable LoRAAdapter (PEFT layout
    /// lora_A [r, D_in], lora_B [D_out, r]) with A and B each averaged over the S skills separately and
    /// laid out as the mixture above; same scaling. Under uniform routing the layer computes the same map.
    public static func collapseToLoRA(_ vit: VisionTransformer) {
        for (_, layer, adapter) in adapters(in: vit) {
            let h = adapter.heads, s = adapter.skills, r = adapter.rank
            let din = adapter.inFeatures, dout = adapter.outFeatures
            let (meanA, meanB) = Autograd.withNoGrad { () -> (Tensor, Tensor) in
                let a = adapter.loraA.reshaped([h, s, din / h * r]).mean(axes: [1])          // [h, D_in/h·r]
                    .reshaped([din, r]).transposed(0, 1)                                    // [r, D_in]
                let b = adapter.loraB.reshaped([h, s, r * (dout / h)]).mean(axes: [1])
                    .reshaped([h, r, dout / h]).permuted([1, 0, 2]).reshaped([r, dout]).transposed(0, 1) // [D_out, r]
                return (a, b)
            }
            var unused = RandomGenerator(seed: 0) // LoRAAdapter draws A; we overwrite it
            let lora = LoRAAdapter(inFeatures: din, outFeatures: dout,
                                   config: LoRAConfig(rank: r, alpha: adapter.alpha, targets: []),
                                   generator: &unused)
            lora.loraA.assign(meanA)
            lora.loraB.assign(meanB)
            lora.setTraining(adapter.isTraining)
            layer.adapter = lora
        }
    }

    /// New task(s) (MHR-z / Poly fine-tuning): every routing-logit tensor is replaced by one of
    /// `tasks` rows drawn U(−1e-3, 1e-3), keeping its trainable flag. Optimizer state of the old
    /// logits no longer fits: build the optimizer after this call.
    public static func resetRouting(_ vit: VisionTransformer, tasks: Int, generator: inout RandomGenerator) {
        precondition(tasks > 0, "MHR resetRouting needs at least one task, got \(tasks)")
        var done = Set<ObjectIdentifier>()
        for (_, _, adapter) in adapters(in: vit) where done.insert(ObjectIdentifier(adapter.routing)).inserted {
            let old = adapter.routing.logits
            let fresh = Tensor.uniform([tasks, old.shape[1]], low: -1e-3, high: 1e-3, using: &generator)
            fresh.requiresGrad = old.requiresGrad
            adapter.routing.logits = fresh
        }
    }

    /// The routing-logit tensors below `model`, by full name (for the optimizer group with
    /// routingLr / routingWeightDecay); a shared Z appears once.
    public static func routingParameters(_ model: Module) -> [(String, Tensor)] {
        var routing = Set<ObjectIdentifier>()
        for (_, module) in model.namedModules() {
            if let adapter = module as? MHRAdapter { routing.insert(ObjectIdentifier(adapter.routing.logits)) }
        }
        return model.namedParameters().filter { routing.contains(ObjectIdentifier($0.1)) }
    }
}

