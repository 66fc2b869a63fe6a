// The typed configuration of a run, one struct per YAML section. Every key has a default (documented in
// docs/config.md); YAML keys are the snake_case of these property names.
import AdaData
import AdaModels
import AdaTensor

extension AdapterMethodKind: ConfigChoice {}
extension HeadKind: ConfigChoice {}
extension NeckKind: ConfigChoice {}
extension MHRGranularity: ConfigChoice {}
extension LoRATarget: ConfigChoice {}

public struct ModelSection: Codable, Equatable, Sendable {
    /// A timm preset name (vit_{tiny,small,base,large}_patch{16,14}); the fields below override it.
    public var backbone = "vit_small_patch16"
    /// Training image size [height, width]: the crop, and the position-embedding grid.
    public var imageSize = [512, 512]
    /// A timm model.safetensors for the backbone; without it the backbone starts from random weights.
    public var pretrained: String? = nil
    public var dropPath: Float = 0.1
    public var embedDim: Int? = nil
    public var depth: Int? = nil
    public var heads: Int? = nil
    public var patchSize: Int? = nil
    public var mlpRatio: Double? = nil

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = ModelSection()
        backbone = try c.decodeIfPresent(String.self, forKey: .backbone) ?? d.backbone
        imageSize = try c.decodeIfPresent([Int].self, forKey: .imageSize) ?? d.imageSize
        pretrained = try c.decodeIfPresent(String.self, forKey: .pretrained)
        dropPath = try c.decodeIfPresent(Float.self, forKey: .dropPath) ?? d.dropPath
        embedDim = try c.decodeIfPresent(Int.self, forKey: .embedDim)
        depth = try c.decodeIfPresent(Int.self, forKey: .depth)
        heads = try c.decodeIfPresent(Int.self, forKey: .heads)
        patchSize = try c.decodeIfPresent(Int.self, forKey: .patchSize)
        mlpRatio = try c.decodeIfPresent(Double.self, forKey: .mlpRatio)
    }

    /// The ViT shape this section describes.
    public func vitConfig() throws -> ViTConfig {
        guard var config = ViTConfig.preset(backbone) else {
            throw ConfigError.invalid(location: "model", path: "model.backbone",
                                      reason: "unknown preset '\(backbone)' (known: \(ViTConfig.presetNames.joined(separator: ", ")))")
        }
        if let embedDim { config.embedDim = embedDim }
        if let depth { config.depth = depth }
        if let heads { config.heads = heads }
        if let patchSize { config.patchSize = patchSize }
        if let mlpRatio { config.mlpRatio = mlpRatio }
        guard imageSize.count == 2, imageSize.allSatisfy({ $0 >= config.patchSize }) else {
            throw ConfigError.invalid(location: "model", path: "model.image_size",
                                      reason: "expected [height, width], each ≥ the patch size \(config.patchSize), got \(imageSize)")
        }
        guard config.embedDim % config.heads == 0 else {
            throw ConfigError.invalid(location: "model", path: "model.heads",
                                      reason: "embed_dim \(config.embedDim) is not divisible by \(config.heads) heads")
        }
        config.imageHeight = imageSize[0]
        config.imageWidth = imageSize[1]
        config.dropPathRate = dropPath
        return config
    }
}

public enum OptimizerKind: String, Codable, Sendable, ConfigChoice { case adamw, sgd }
public enum ScheduleKind: String, Codable, Sendable, ConfigChoice { case poly, cosine, constant }

public struct TrainSection: Codable, Equatable, Sendable {
    public var iterations = 1000
    public var batchSize = 8
    /// Gradient accumulation: optimizer step every N batches (effective batch = batch_size × N).
    public var accumulate = 1
    public var optimizer = OptimizerKind.adamw
    public var lr: Double = 1e-3
    public var weightDecay: Double = 0.01
    public var betas = [0.9, 0.999]
    public var eps: Double = 1e-8
    public var momentum: Double = 0.9
    /// Parameters whose name contains any of these get no weight decay.
    public var noDecay = ["norm", "bias", "pos_embed", "cls_token"]
    public var schedule = ScheduleKind.poly
    public var power: Double = 1.0
    public var warmupIters = 0
    /// The learning rate at iteration 0 of the warm-up, as a fraction of lr.
    public var warmupRatio: Double = 1e-6
    public var minLr: Double = 0
    /// Clip the global gradient norm to this value (null = no clipping).
    public var gradClip: Double? = nil
    public var evalEvery = 500
    public var checkpointEvery = 500
    public var logEvery = 10
    public var seed = 0
    /// Threads of the engine's pool: kernels and GEMMs (null = all cores).
    public var threads: Int? = nil
    /// Data-loading worker threads (null = as many as threads).
    public var workers: Int? = nil

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = TrainSection()
        iterations = try c.decodeIfPresent(Int.self, forKey: .iterations) ?? d.iterations
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        accumulate = try c.decodeIfPresent(Int.self, forKey: .accumulate) ?? d.accumulate
        optimizer = try c.decodeIfPresent(OptimizerKind.self, forKey: .optimizer) ?? d.optimizer
        lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? d.lr
        weightDecay = try c.decodeIfPresent(Double.self, forKey: .weightDecay) ?? d.weightDecay
        betas = try c.decodeIfPresent([Double].self, forKey: .betas) ?? d.betas
        eps = try c.decodeIfPresent(Double.self, forKey: .eps) ?? d.eps
        momentum = try c.decodeIfPresent(Double.self, forKey: .momentum) ?? d.momentum
        noDecay = try c.decodeIfPresent([String].self, forKey: .noDecay) ?? d.noDecay
        schedule = try c.decodeIfPresent(ScheduleKind.self, forKey: .schedule) ?? d.schedule
        power = try c.decodeIfPresent(Double.self, forKey: .power) ?? d.power
        warmupIters = try c.decodeIfPresent(Int.self, forKey: .warmupIters) ?? d.warmupIters
        warmupRatio = try c.decodeIfPresent(Double.self, forKey: .warmupRatio) ?? d.warmupRatio
        minLr = try c.decodeIfPresent(Double.self, forKey: .minLr) ?? d.minLr
        gradClip = try c.decodeIfPresent(Double.self, forKey: .gradClip)
        evalEvery = try c.decodeIfPresent(Int.self, forKey: .evalEvery) ?? d.evalEvery
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        logEvery = try c.decodeIfPresent(Int.self, forKey: .logEvery) ?? d.logEvery
        seed = try c.decodeIfPresent(Int.self, forKey: .seed) ?? d.seed
        threads = try c.decodeIfPresent(Int.self, forKey: .threads)
        workers = try c.decodeIfPresent(Int.self, forKey: .workers)
    }

    func validate() throws {
        func bad(_ key: String, _ reason: String) -> ConfigError { .invalid(location: "train", path: "train.\(key)", reason: reason) }
        if iterations < 1 { throw bad("iterations", "must be ≥ 1, got \(iterations)") }
        if batchSize < 1 { throw bad("batch_size", "must be ≥ 1, got \(batchSize)") }
        if accumulate < 1 { throw bad("accumulate", "must be ≥ 1, got \(accumulate)") }
        if !(lr > 0) { throw bad("lr", "must be > 0, got \(lr)") }
        if betas.count != 2 || !betas.allSatisfy({ $0 >= 0 && $0 < 1 }) { throw bad("betas", "expected [beta1, beta2] in [0, 1), got \(betas)") }
        if let gradClip, !(gradClip > 0) { throw bad("grad_clip", "must be > 0 or null, got \(gradClip)") }
        if evalEvery < 0 { throw bad("eval_every", "must be ≥ 0 (0 = only at the end), got \(evalEvery)") }
        if checkpointEvery < 0 { throw bad("checkpoint_every", "must be ≥ 0 (0 = only at the end), got \(checkpointEvery)") }
        if logEvery < 1 { throw bad("log_every", "must be ≥ 1, got \(logEvery)") }
        if warmupIters < 0 { throw bad("warmup_iters", "must be ≥ 0, got \(warmupIters)") }
        if weightDecay < 0 { throw bad("weight_decay", "must be ≥ 0, got \(weightDecay)") }
        if !(eps > 0) { throw bad("eps", "must be > 0, got \(eps)") }
        if minLr < 0 || minLr > lr { throw bad("min_lr", "must be in [0, lr], got \(minLr)") }
        if let threads, threads < 1 { throw bad("threads", "must be ≥ 1, got \(threads)") }
        if let workers, workers < 1 { throw bad("workers", "must be ≥ 1, got \(workers)") }
    }
}

public enum EvalMode: String, Codable, Sendable, ConfigChoice { case whole, slide }

public struct EvalSection: Codable, Equatable, Sendable {
    public var mode = EvalMode.whole
    public var crop = [512, 512]
    public var stride = [341, 341]
    /// Horizontal-flip test-time augmentation.
    public var flip = false
    public var split: String? = nil

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = EvalSection()
        mode = try c.decodeIfPresent(EvalMode.self, forKey: .mode) ?? d.mode
        crop = try c.decodeIfPresent([Int].self, forKey: .crop) ?? d.crop
        stride = try c.decodeIfPresent([Int].self, forKey: .stride) ?? d.stride
        flip = try c.decodeIfPresent(Bool.self, forKey: .flip) ?? d.flip
        split = try c.decodeIfPresent(String.self, forKey: .split)
    }
}

public struct OutputSection: Codable, Equatable, Sendable {
    /// Run directory (null = runs/<config file stem>).
    public var dir: String? = nil
    public init() {}
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        dir = try c.decodeIfPresent(String.self, forKey: .dir)
    }
}

/// How `train --init-from RUN_DIR` starts a new run from another run's adapters (MHR's transfer to a new
/// task). The source run's backbone must be the same; its heads are never copied (a new head is trained).
public enum InitMode: String, Codable, Sendable, ConfigChoice {
    /// Copy every adapter tensor the new model has (MHR: the skill inventories; routing restarts at one
    /// row U(−1e-3, 1e-3)) and train them all.
    case full
    /// MHR-z: copy the inventories and freeze them; train only the new routing logits and the head.
    case mhrZ = "mhr_z"
    /// MHR-μ: collapse each inventory into one LoRA (A and B averaged over the skills separately) and
    /// fine-tune that LoRA and the head: the run is a LoRA run (adapter.lora is derived from adapter.mhr).
    case mhrMu = "mhr_mu"
}

public struct InitSection: Codable, Equatable, Sendable {
    /// A run directory (or checkpoint folder) to start from; `train --init-from` sets it.
    public var from: String? = nil
    public var mode = InitMode.full

    public init() {}

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        from = try c.decodeIfPresent(String.self, forKey: .from)
        mode = try c.decodeIfPresent(InitMode.self, forKey: .mode) ?? .full
    }
}

public struct RunConfig: Codable, Equatable, Sendable {
    public var model = ModelSection()
    public var adapter = AdapterSettings()
    public var head = HeadSpec()
    public var neck = NeckSpec()
    public var data = DataSection()
    public var train = TrainSection()
    public var eval = EvalSection()
    public var output = OutputSection()
    /// `init:` (a keyword in Swift, hence the property name).
    public var initialization = InitSection()

    public init() {}

    enum CodingKeys: String, CodingKey { case model, adapter, head, neck, data, train, eval, output, initialization = "init" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        model = try c.decodeIfPresent(ModelSection.self, forKey: .model) ?? ModelSection()
        adapter = try c.decodeIfPresent(AdapterSettings.self, forKey: .adapter) ?? AdapterSettings()
        head = try c.decodeIfPresent(HeadSpec.self, forKey: .head) ?? HeadSpec()
        neck = try c.decodeIfPresent(NeckSpec.self, forKey: .neck) ?? NeckSpec()
        data = try c.decodeIfPresent(DataSection.self, forKey: .data) ?? DataSection()
        train = try c.decodeIfPresent(TrainSection.self, forKey: .train) ?? TrainSection()
        eval = try c.decodeIfPresent(EvalSection.self, forKey: .eval) ?? EvalSection()
        output = try c.decodeIfPresent(OutputSection.self, forKey: .output) ?? OutputSection()
        initialization = try c.decodeIfPresent(InitSection.self, forKey: .initialization) ?? InitSection()
    }

    func validateMethod() throws {
        func bad(_ path: String, _ reason: String) -> ConfigError { .invalid(location: "adapter", path: "adapter.\(path)", reason: reason) }
        let a = adapter.adaroute, l = adapter.lora, f = adapter.adaptformer
        switch adapter.method {
        case .adaroute:
            if a.rank < 1 { throw bad("adaroute.rank", "must be ≥ 1, got \(a.rank)") }
            if a.routerHidden < 1 { throw bad("adaroute.router_hidden", "must be ≥ 1, got \(a.routerHidden)") }
            if let e = a.experts, e < 1 { throw bad("adaroute.experts", "must be ≥ 1 or null, got \(e)") }
            if a.kernelSizes.contains(where: { $0 < 1 || $0 % 2 == 0 }) || Set(a.kernelSizes).count != a.kernelSizes.count {
                throw bad("adaroute.kernel_sizes", "expected distinct odd sizes such as [3, 5, 7] (or [] for the token path), got \(a.kernelSizes)")
            }
        case .lora:
            if l.rank < 1 { throw bad("lora.rank", "must be ≥ 1, got \(l.rank)") }
            if !(0..<1).contains(l.dropout) { throw bad("lora.dropout", "must be in [0, 1), got \(l.dropout)") }
            if l.targets.isEmpty { throw bad("lora.targets", "name at least one of qkv, proj, fc1, fc2") }
        case .adaptformer:
            if f.bottleneck < 1 { throw bad("adaptformer.bottleneck", "must be ≥ 1, got \(f.bottleneck)") }
            if !(0..<1).contains(f.dropout) { throw bad("adaptformer.dropout", "must be in [0, 1), got \(f.dropout)") }
        case .mhr:
            let m = adapter.mhr
            if m.skills < 1 { throw bad("mhr.skills", "must be ≥ 1, got \(m.skills)") }
            if m.heads < 1 { throw bad("mhr.heads", "must be ≥ 1 (1 = Poly), got \(m.heads)") }
            if m.rank < 1 { throw bad("mhr.rank", "must be ≥ 1, got \(m.rank)") }
            if m.targets.isEmpty { throw bad("mhr.targets", "name at least one of qkv, proj, fc1, fc2") }
            if !(m.temperature > 0) { throw bad("mhr.temperature", "must be > 0, got \(m.temperature)") }
            if !(m.routingLr > 0) { throw bad("mhr.routing_lr", "must be > 0, got \(m.routingLr)") }
            if m.routingWeightDecay < 0 { throw bad("mhr.routing_weight_decay", "must be ≥ 0, got \(m.routingWeightDecay)") }
            let vit = try model.vitConfig()
            let widths: [LoRATarget: [Int]] = [.qkv: [vit.embedDim, 3 * vit.embedDim], .proj: [vit.embedDim],
                                               .fc1: [vit.embedDim, vit.mlpHidden], .fc2: [vit.mlpHidden, vit.embedDim]]
            for target in m.targets {
                if let width = widths[target]!.first(where: { $0 % m.heads != 0 }) {
                    throw bad("mhr.heads", "\(m.heads) heads must divide the \(target.rawValue) layer's width \(width)")
                }
            }
        case .paca:
            let p = adapter.paca
            if p.rank < 1 { throw bad("paca.rank", "must be ≥ 1 (columns per layer), got \(p.rank)") }
            if p.targets.isEmpty { throw bad("paca.targets", "name at least one of qkv, proj, fc1, fc2") }
            let vit = try model.vitConfig()
            let narrowest = p.targets.map { $0 == .fc2 ? vit.mlpHidden : vit.embedDim }.min() ?? 0
            if p.rank > narrowest { throw bad("paca.rank", "\(p.rank) columns exceed the narrowest target's \(narrowest) inputs") }
        case .linear, .full: break
        }
    }

    /// The model structure this config builds: one head per dataset; MHR-μ initialisation makes it a LoRA run.
    public func modelSpec() throws -> ModelSpec {
        let tasks = data.tasks
        var adapter = adapter
        if initialization.mode == .mhrMu {
            let m = adapter.mhr
            adapter.method = .lora
            adapter.lora = LoRAConfig(rank: m.rank, alpha: m.alpha, dropout: 0, targets: m.targets)
        }
        return ModelSpec(backbone: try model.vitConfig(), classes: tasks[0].dataset.classes.count, head: head, neck: neck,
                         adapter: adapter,
                         tasks: tasks.count > 1 ? tasks.map { .init(name: $0.name, classes: $0.dataset.classes.count) } : [])
    }

    /// Checks that go beyond types (ranges, consistency).
    public func validate() throws {
        try train.validate()
        try validateMethod()
        if let problem = head.problem(neck: neck) {
            let path = problem.components(separatedBy: " ").first ?? "head"
            throw ConfigError.invalid(location: path.hasPrefix("neck") ? "neck" : "head", path: path, reason: problem)
        }
        if let problem = neck.problem(depth: try model.vitConfig().depth) {
            throw ConfigError.invalid(location: "neck", path: problem.components(separatedBy: ":").first ?? "neck", reason: problem)
        }
        if neck.kind != .none && train.batchSize < 2 {
            // Batch statistics of a 1×1 pooled map need more than one sample (PyTorch refuses too).
            throw ConfigError.invalid(location: "train", path: "train.batch_size",
                                      reason: "the \(neck.kind.rawValue) neck and UPerNet head use BatchNorm, which needs a training batch of at least 2, got \(train.batchSize)")
        }
        if eval.crop.count != 2 || eval.stride.count != 2 || !(eval.crop + eval.stride).allSatisfy({ $0 >= 1 }) {
            throw ConfigError.invalid(location: "eval", path: "eval.crop", reason: "crop and stride must be [h, w] with values ≥ 1, got \(eval.crop) and \(eval.stride)")
        }
        try data.validate(imageSize: model.imageSize)
        let patch = try model.vitConfig().patchSize
        if model.imageSize.contains(where: { $0 % patch != 0 }) {
            throw ConfigError.invalid(location: "model", path: "model.image_size",
                                      reason: "\(model.imageSize) is not a multiple of the patch size \(patch) (the token grid would drop pixels)")
        }
        if data.datasets.count > 1 && neck.kind != .none {
            // Each dataset's samples form a sub-batch for its head, often of one sample: too few for BatchNorm.
            throw ConfigError.invalid(location: "neck", path: "neck.kind",
                                      reason: "several datasets (one head each) need neck.kind none and a linear head for now, got \(neck.kind.rawValue)")
        }
        if data.datasets.count > 1 && head.kind == .setrNaive {
            throw ConfigError.invalid(location: "head", path: "head.kind",
                                      reason: "several datasets need head.kind linear for now (setr_naive's BatchNorm sees per-dataset sub-batches, often of one sample)")
        }
        if initialization.mode != .full && adapter.method != .mhr {
            throw ConfigError.invalid(location: "init", path: "init.mode",
                                      reason: "\(initialization.mode.rawValue) adapts an MHR run: it needs adapter.method mhr, got \(adapter.method.rawValue)")
        }
        if initialization.mode != .full && initialization.from == nil {
            throw ConfigError.invalid(location: "init", path: "init.from",
                                      reason: "init.mode \(initialization.mode.rawValue) starts from a trained run: pass --init-from RUN_DIR (or set init.from)")
        }
    }
}
