// PaCA — Partial Connection Adaptation (Woo et al., ICLR 2025, arXiv 2503.01905; code WooSunghyeon/paca,
// peft/src/peft/tuners/paca). Per adapted Linear W [N, K], r input columns idx = randperm(K)[:r] are fixed
// at construction; the trainable `paca_P` [N, r] re-parameterises those columns as s·P (s = alpha/r):
//
//   y = x·W_effᵀ + b,   W_eff = W with W_eff[:, idx[j]] = s·P[:, j]
//
// P starts as W[:, idx]/s, so a fresh adapter leaves the model unchanged (bit for bit when s is a power
// of two). Before EVERY forward (training and evaluation) s·P is written into W's idx columns, then the
// layer is one GEMM (`partialLinear`, which keeps only x[..., idx] for dP). W and the bias stay frozen.
// Merging = a last sync, then the adapter is dropped: the Linear's weight is W_eff.
//
// Names next to the Linear's weight, as the reference exports them: `blocks.{i}.attn.qkv.paca_P`,
// `….paca_idx` (a buffer; the integer indices are stored as exact float values).
//
// Because the sync writes into the backbone's weight, the adapter remembers the original values of the
// columns it overwrites. That makes three things safe:
// - loading pretrained weights AFTER injection (the app builds, injects, then loads the backbone): the
//   next sync sees W was replaced and, if P is still its initial W/s, re-derives P from the new W;
// - loading a checkpoint (P, idx) into a fresh pretrained backbone: P is not initial, so the sync writes
//   the trained s·P into the new W's (checkpoint) columns — the trained W_eff;
// - a new idx (checkpoint) after a sync with another idx: the old columns get their original values back.
//
// Legend: M rows (tokens), K in features, N out features, r partial columns per layer.
import AdaNN
import AdaTensor

public struct PaCAConfig: Equatable, Sendable, Codable {
    /// r: input columns trained per layer (paper/README `r`).
    public var rank: Int = 8
    /// paca_alpha; the columns are s·P with s = alpha / r.
    public var alpha: Float = 16
    /// Which linears of every block are adapted.
    public var targets: [LoRATarget] = [.qkv, .proj, .fc1, .fc2]
    /// Seed of the column draw; nil draws from the model's initialisation generator.
    public var seed: UInt64? = nil

    public init(rank: Int = 8, alpha: Float = 16, targets: [LoRATarget] = [.qkv, .proj, .fc1, .fc2], seed: UInt64? = nil) {
        self.rank = rank
        self.alpha = alpha
        self.targets = targets
        self.seed = seed
    }

    /// s = alpha / r, the factor on P.
    public var scaling: Float { alpha / Float(rank) }

    /// Missing keys keep their defaults, so a config may give only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        rank = try c.decodeIfPresent(Int.self, forKey: .rank) ?? 8
        alpha = try c.decodeIfPresent(Float.self, forKey: .alpha) ?? 16
        targets = try c.decodeIfPresent([LoRATarget].self, forKey: .targets) ?? [.qkv, .proj, .fc1, .fc2]
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed)
    }

    /// Why this config cannot adapt `vit`, as (key, message), or nil.
    public func problem(for vit: ViTConfig) -> (key: String, message: String)? {
        if rank < 1 { return ("paca.rank", "must be ≥ 1, got \(rank)") }
        if !(alpha.isFinite && alpha > 0) { return ("paca.alpha", "must be a positive number, got \(alpha)") }
        if targets.isEmpty { return ("paca.targets", "name at least one of qkv, proj, fc1, fc2") }
        for target in Set(targets) {
            let inFeatures = target == .fc2 ? vit.mlpHidden : vit.embedDim
            if rank > inFeatures {
                return ("paca.rank", "\(rank) columns exceed the \(inFeatures) input features of \(target.rawValue)")
            }
        }
        return nil
    }
}

/// The partial connections of one Linear (`paca_P` trainable, `paca_idx` buffer, next to its weight).
public final class PaCAAdapter: Module, LinearAdapter {
    /// P [N, r]: the trained columns divided by `scaling`.
    public let partial: Tensor
    /// idx [r]: the input columns, integer values stored as floats.
    public let indexBuffer: Tensor
    public let scaling: Float
    /// False: the Linear computes the base model (the original columns are written back), P kept.
    public var isEnabled = true

    // Bookkeeping of the weight columns this adapter overwrites (not saved: it comes from the backbone).
    private weak var trackedWeight: Tensor?
    private var baseColumns: [Int]
    /// W[:, baseColumns] as the backbone had them, [N, r] row-major.
    private var baseValues: [Float]
    /// What the last sync wrote into W[:, baseColumns]; nil while W holds `baseValues` there.
    private var writtenValues: [Float]?

    public var rank: Int { partial.shape[1] }

    /// An adapter on `linear` for the given columns: P = W[:, columns]/scaling, then the first sync.
    public init(linear: Linear, columns: [Int], scaling: Float) {
        let k = linear.inFeatures, n = linear.outFeatures
        precondition(scaling.isFinite && scaling != 0, "PaCA scaling must be finite and non-zero, got \(scaling)")
        precondition(k <= 1 << 24, "PaCA: \(k) input features cannot be stored exactly as float indices")
        Tensor.checkPartialColumns(columns, inFeatures: k)
        partial = Tensor.zeros([n, columns.count], requiresGrad: true)
        indexBuffer = Tensor(columns.map { Float($0) })
        self.scaling = scaling
        baseColumns = columns
        baseValues = []
        super.init()
        capture(linear.weight, columns: columns)
        let p = partial.data
        for i in 0..<baseValues.count { p[i] = baseValues[i] / scaling }
        sync(linear)
    }

    /// Draws the columns (first r of a random permutation of 0..<K) from `generator`.
    public convenience init(linear: Linear, config: PaCAConfig, generator: inout RandomGenerator) {
        self.init(linear: linear, columns: PaCA.drawColumns(inFeatures: linear.inFeatures, count: config.rank, generator: &generator),
                  scaling: config.scaling)
    }

    public override var localParameters: [(String, Tensor)] { [("paca_P", partial)] }
    public override var localBuffers: [(String, Tensor)] { [("paca_idx", indexBuffer)] }

    /// The columns the index buffer holds (checked: exact non-negative integers).
    public var columns: [Int] {
        indexBuffer.values.map { value in
            precondition(value >= 0 && value == value.rounded() && value < Float(1 << 24),
                         "PaCA paca_idx holds \(value), not a column index")
            return Int(value)
        }
    }

    /// x [..., K] → [..., N]. Syncs first, in every mode.
    public func forward(_ x: Tensor, base: Linear, context: ForwardContext) -> Tensor {
        sync(base)
        guard isEnabled else { return base.base(x) }
        return x.partialLinear(weight: base.weight, bias: base.bias, columns: columns, partial: partial, scale: scaling)
    }

    /// Makes `linear.weight` hold W_eff (enabled) or the base weight (disabled) for the current P and idx.
    public func sync(_ linear: Linear) {
        let weight = linear.weight, idx = columns
        precondition(weight.shape == [partial.shape[0], weight.shape[1]] && idx.count == rank,
                     "PaCA: P \(partial.shape) / idx [\(idx.count)] do not fit a Linear \(weight.shape)")
        Tensor.checkPartialColumns(idx, inFeatures: weight.shape[1])
        let expected = writtenValues ?? baseValues
        if trackedWeight !== weight || !weightColumns(weight, at: baseColumns, equal: expected) {
            // The weight was replaced from outside (pretrained or state load): it is the new base. A P still at
            // its initial value W/s belonged to the old base, so it is re-derived; a loaded P is kept.
            let initial = idx == baseColumns && partialIsInitial()
            capture(weight, columns: idx)
            if initial {
                let p = partial.data
                for i in 0..<baseValues.count { p[i] = baseValues[i] / scaling }
            }
        } else if idx != baseColumns {
            if writtenValues != nil { write(baseValues, into: weight, at: baseColumns) }
            capture(weight, columns: idx)
        }
        if isEnabled {
            Tensor.writePartialColumns(into: weight, columns: idx, partial: partial, scale: scaling)
            let p = partial.data
            if writtenValues == nil { writtenValues = [Float](repeating: 0, count: baseValues.count) }
            writtenValues!.withUnsafeMutableBufferPointer { out in
                for i in 0..<out.count { out[i] = scaling * p[i] }
            }
        } else if writtenValues != nil {
            write(baseValues, into: weight, at: baseColumns)
            writtenValues = nil
        }
    }

    /// Writes the original columns back (the Linear computes the base model until the next enabled sync).
    public func restoreBase(_ linear: Linear) {
        let enabled = isEnabled
        isEnabled = false
        sync(linear)
        isEnabled = enabled
    }

    /// A last sync, then detaches itself: the Linear keeps W_eff as its plain weight.
    public func merge(into linear: Linear) {
        precondition(linear.adapter === self, "PaCA merge: this adapter is not the one plugged into the Linear")
        let enabled = isEnabled
        isEnabled = true
        sync(linear)
        isEnabled = enabled
        linear.adapter = nil
    }

    // MARK: column bookkeeping

    private func capture(_ weight: Tensor, columns idx: [Int]) {
        let k = weight.shape[1], n = weight.shape[0], r = idx.count, w = weight.data
        trackedWeight = weight
        baseColumns = idx
        baseValues = [Float](unsafeUninitializedCapacity: n * r) { out, initialised in
            for o in 0..<n { for j in 0..<r { out[o * r + j] = w[o * k + idx[j]] } }
            initialised = n * r
        }
        writtenValues = nil
    }

    private func weightColumns(_ weight: Tensor, at idx: [Int], equal values: [Float]) -> Bool {
        let k = weight.shape[1], n = weight.shape[0], r = idx.count, w = weight.data
        guard values.count == n * r, idx.allSatisfy({ $0 < k }) else { return false }
        for o in 0..<n {
            for j in 0..<r where w[o * k + idx[j]].bitPattern != values[o * r + j].bitPattern { return false }
        }
        return true
    }

    private func write(_ values: [Float], into weight: Tensor, at idx: [Int]) {
        let k = weight.shape[1], n = weight.shape[0], r = idx.count, w = weight.data
        for o in 0..<n { for j in 0..<r { w[o * k + idx[j]] = values[o * r + j] } }
    }

    /// P is exactly the initial W[:, idx]/s of the captured base.
    private func partialIsInitial() -> Bool {
        guard baseValues.count == partial.count else { return false }
        let p = partial.data
        for i in 0..<baseValues.count where p[i].bitPattern != (baseValues[i] / scaling).bitPattern { return false }
        return true
    }
}

public enum PaCA {
    /// First `count` entries of a uniformly random permutation of 0..<inFeatures (torch.randperm(K)[:r]
    /// in distribution): a partial Fisher–Yates shuffle.
    public static func drawColumns(inFeatures k: Int, count r: Int, generator: inout RandomGenerator) -> [Int] {
        precondition(r >= 1 && r <= k, "PaCA: cannot draw \(r) distinct columns out of \(k)")
        var order = Array(0..<k)
        for i in 0..<r { order.swapAt(i, i + generator.int(below: k - i)) }
        return Array(order.prefix(r))
    }

    /// The generator of one layer's column draw when the config fixes a seed: independent per layer, and a
    /// layer's columns do not depend on which other targets are adapted.
    static func columnGenerator(seed: UInt64, block: Int, target: LoRATarget) -> RandomGenerator {
        let layer = UInt64(block * LoRATarget.allCases.count + LoRATarget.allCases.firstIndex(of: target)!)
        return RandomGenerator(seed: seed ^ ((layer &+ 1) &* 0xD1B5_4A32_D192_ED03))
    }

    /// Plugs an adapter into every targeted linear of every block (block by block, targets in the order
    /// qkv, proj, fc1, fc2 whatever the config's order, so the draw is reproducible) and freezes those
    /// linears' weights and biases.
    public static func inject(_ config: PaCAConfig, into backbone: VisionTransformer, generator: inout RandomGenerator) {
        precondition(!config.targets.isEmpty, "PaCA needs at least one target (qkv, proj, fc1, fc2)")
        precondition(config.rank >= 1, "PaCA rank must be ≥ 1, got \(config.rank)")
        precondition(config.alpha.isFinite && config.alpha > 0, "PaCA alpha must be positive, got \(config.alpha)")
        let chosen = Set(config.targets)
        for (b, block) in backbone.blocks.enumerated() {
            for target in LoRATarget.allCases where chosen.contains(target) {
                let layer = LoRA.linear(target, in: block)
                precondition(layer.adapter == nil, "PaCA: blocks.\(b) \(target.rawValue) already has an adapter")
                precondition(config.rank <= layer.inFeatures,
                             "PaCA: \(config.rank) columns exceed the \(layer.inFeatures) inputs of blocks.\(b) \(target.rawValue)")
                layer.weight.requiresGrad = false
                layer.bias?.requiresGrad = false
                let columns: [Int]
                if let seed = config.seed {
                    var layerGenerator = columnGenerator(seed: seed, block: b, target: target)
                    columns = drawColumns(inFeatures: layer.inFeatures, count: config.rank, generator: &layerGenerator)
                } else {
                    columns = drawColumns(inFeatures: layer.inFeatures, count: config.rank, generator: &generator)
                }
                layer.adapter = PaCAAdapter(linear: layer, columns: columns, scaling: config.scaling)
            }
        }
    }

    /// Every PaCA-adapted Linear below `root`, with its dotted path.
    public static func adapters(in root: Module) -> [(path: String, linear: Linear, adapter: PaCAAdapter)] {
        root.namedModules().compactMap { path, module in
            guard let linear = module as? Linear, let adapter = linear.adapter as? PaCAAdapter else { return nil }
            return (path, linear, adapter)
        }
    }

    /// Writes s·P into every adapted weight now (e.g. before exporting the whole model after an
    /// optimizer step: the weights otherwise hold the values of the last forward).
    public static func syncAll(in root: Module) {
        for (_, linear, adapter) in adapters(in: root) { adapter.sync(linear) }
    }

    /// Merges every PaCA adapter below `root` (a backbone or a whole model) into its Linear's weight;
    /// returns how many were merged.
    @discardableResult
    public static func merge(_ root: Module) -> Int {
        let found = adapters(in: root)
        for (_, linear, adapter) in found { adapter.merge(into: linear) }
        return found.count
    }
}
