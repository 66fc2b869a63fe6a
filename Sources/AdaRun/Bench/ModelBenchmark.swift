// `adaroute bench train` / `bench infer`: step time of a whole segmentation model on synthetic batches
// (no disk), for any preset, method, image size, batch, class count and thread count; warm-up steps,
// then timed steps (median/min/max), images/s, achieved GFLOP/s and peak RSS.
//
// FLOPs are counted analytically (multiply-add = 2 FLOPs) for the GEMM-shaped work, per image, with
// T = N + 1 tokens, N = (H/p)(W/p), D width, L depth, K classes:
//   patch embedding 2·N·3p²·D; per block: qkv 2·T·D·3D, attention scores and values 2·2·T²·D,
//   projection 2·T·D², MLP 2·2·T·D·(r_mlp·D); linear head 2·N·D·K;
//   AdaRoute per block: 2·2·N·D·r (routed down/up) + 2·N·r² (proj) + Σ_k 2·N·r·k² (routed depthwise)
//     + 2·2·N·D·9 (dwconv1/2); LoRA and MHR per adapted linear: 2·T·r·(in + out) (MHR's per-task mixing
//     is negligible); PaCA: no extra forward, 2·T·r·out for the r columns' weight gradient;
//     AdaptFormer per block: 2·2·T·D·b.
// Pyramid decoders count every conv as 2·(output pixels)·(k²·C_in)·C_out, with level sizes S_l:
//   STA (width c, hidden h', P = N·p² pixels, S = P/64, P/256, P/1024): stem 2·(P/4)·27c, conv2 2·S_0·9c·2c,
//     conv3 2·S_1·18c·4c, conv4 2·S_2·36c·4c, fusion Σ_l 2·S_l·(D + C_detail,l)·h';
//   Feature2Pyramid (S = 16N, 4N, N, N/4): deconvs 2·N·D·4D + 2·4N·D·4D (×4) + 2·N·D·4D (×2);
//   UPerNet (c channels, L levels C_l, pool scales P): PPM Σ_s 2·s²·C_top·c, bottleneck 2·S_top·9(C_top + |P|c)·c,
//     laterals Σ_{l<L} 2·S_l·C_l·c, fpn Σ_{l<L} 2·S_l·9c·c, fpn_bottleneck 2·S_0·9Lc·c, classifier 2·S_0·c·K;
//   auxiliary FCN (c_a) on the level nearest stride p: 2·S·9·C·c_a + 2·S·c_a·K. Neck and heads always train.
// Training = forward + backward, where the backward costs 2× the forward of layers whose weights train
// (input and weight gradients) and 1× for frozen layers that still pass gradients to earlier trainable
// ones (input gradients only); a linear probe back-propagates into the head only.
import AdaModels
import AdaNN
import AdaTensor
import Dispatch
import Foundation

public struct ModelBenchmarkSettings: Sendable {
    public var preset = "vit_tiny_patch16"
    public var method = AdapterMethodKind.adaroute
    public var imageSize = 224
    public var batch = 8
    public var classes = 150
    public var rank = 64
    public var routerHidden = 16
    public var kernels: [Int] = []
    public var head = HeadKind.linear
    public var neck = NeckKind.none
    public var headChannels = 256
    public var auxWeight: Float = 0
    /// A whole model structure (e.g. from a run config); when set, it replaces every model setting above.
    public var fixedSpec: ModelSpec? = nil
    public var warmup = 2
    public var steps = 5
    public init() {}
}

public struct ModelBenchmarkResult: Sendable {
    public var seconds: TimingSummary
    public var batch: Int
    public var gflopPerStep: Double
    public var peakRSSBytes: Int
    public var imagesPerSecond: Double { Double(batch) / seconds.median }
    public var gflops: Double { gflopPerStep / seconds.median }
}

public enum ModelBenchmark {
    public static func spec(_ s: ModelBenchmarkSettings) throws -> ModelSpec {
        if let fixed = s.fixedSpec { return fixed }
        guard var vit = ViTConfig.preset(s.preset) else {
            throw ConfigError.invalid(location: "--model", path: "model", reason: "unknown preset '\(s.preset)' (known: \(ViTConfig.presetNames.joined(separator: ", ")))")
        }
        vit.imageHeight = s.imageSize
        vit.imageWidth = s.imageSize
        var adapter = AdapterSettings(method: s.method)
        adapter.adaroute = AdaRouteConfig(rank: s.rank, routerHidden: s.routerHidden, kernelSizes: s.kernels)
        let head = HeadSpec(kind: s.head, channels: s.headChannels, auxWeight: s.auxWeight, auxChannels: s.headChannels)
        let neck = NeckSpec(kind: s.neck)
        if let problem = head.problem(neck: neck) ?? neck.problem(depth: vit.depth) {
            throw ConfigError.invalid(location: "--head/--neck", path: "head", reason: problem)
        }
        return ModelSpec(backbone: vit, classes: s.classes, head: head, neck: neck, adapter: adapter)
    }

    /// Forward FLOPs per image of the neck and head (all trainable), per the formula in the file header.
    static func decoderFlops(_ spec: ModelSpec) -> Double {
        let v = spec.backbone
        let n = Double(v.gridHeight * v.gridWidth), d = Double(v.embedDim), k = Double(spec.classes)
        let c = Double(spec.head.channels)
        switch spec.head.kind {
        case .linear: return 2 * n * d * k
        case .setrNaive: return 2 * n * d * c + 2 * n * c * k
        case .upernet: break
        }
        var neck = 0.0
        let sizes: [Double], widths: [Double]
        switch spec.neck.kind {
        case .sta:
            // The detail CNN works in pixels: P = N·p² image pixels, levels at strides 8, 16, 32.
            let cd = Double(spec.neck.detailChannels), h = Double(spec.neck.hidden ?? v.embedDim)
            let pixels = n * Double(v.patchSize * v.patchSize)
            sizes = [pixels / 64, pixels / 256, pixels / 1024]
            neck = 2 * (pixels / 4) * 27 * cd + 2 * sizes[0] * 9 * cd * 2 * cd + 2 * sizes[1] * 18 * cd * 4 * cd + 2 * sizes[2] * 36 * cd * 4 * cd
            neck += 2 * sizes[0] * (d + 2 * cd) * h + 2 * sizes[1] * (d + 4 * cd) * h + 2 * sizes[2] * (d + 4 * cd) * h
            widths = [h, h, h]
        case .feature2pyramid, .none:
            neck = 2 * n * d * 4 * d + 2 * 4 * n * d * 4 * d + 2 * n * d * 4 * d
            sizes = [16 * n, 4 * n, n, n / 4]; widths = [d, d, d, d]
        }
        let gridLevel = sizes.indices.min { abs(sizes[$0] - n) < abs(sizes[$1] - n) } ?? 0
        let levels = Double(sizes.count), top = widths[widths.count - 1], pools = spec.head.poolScales.map(Double.init)
        var head = pools.reduce(0.0) { $0 + 2 * $1 * $1 * top * c } + 2 * sizes[sizes.count - 1] * 9 * (top + Double(pools.count) * c) * c
        for l in 0..<(sizes.count - 1) { head += 2 * sizes[l] * widths[l] * c + 2 * sizes[l] * 9 * c * c }
        head += 2 * sizes[0] * 9 * levels * c * c + 2 * sizes[0] * c * k
        if spec.head.auxWeight > 0 {
            let ca = Double(spec.head.auxChannels), s = sizes[gridLevel]
            head += 2 * s * 9 * widths[gridLevel] * ca + 2 * s * ca * k
        }
        return neck + head
    }

    /// Forward GFLOPs per image, and the fraction of it whose weights train (for the backward count).
    static func forwardFlops(_ spec: ModelSpec) -> (total: Double, trainable: Double, backboneFrozenBelowAdapters: Bool,
                                                    extraBackward: Double) {
        let v = spec.backbone
        let n = Double(v.gridHeight * v.gridWidth), t = n + 1, d = Double(v.embedDim), p = Double(v.patchSize)
        let hidden = Double(v.mlpHidden)
        let block = 2 * t * d * 3 * d + 2 * 2 * t * t * d + 2 * t * d * d + 2 * 2 * t * d * hidden
        let backbone = 2 * n * 3 * p * p * d + Double(v.depth) * block
        let head = decoderFlops(spec)
        let dims: [LoRATarget: (Double, Double)] = [.qkv: (d, 3 * d), .proj: (d, d), .fc1: (d, hidden), .fc2: (hidden, d)]
        var adapters = 0.0, extraBackward = 0.0
        switch spec.adapter.method {
        case .adaroute:
            let r = Double(spec.adapter.adaroute.rank)
            var perBlock = 2 * 2 * n * d * r + 2 * n * r * r
            if !spec.adapter.adaroute.kernelSizes.isEmpty {
                perBlock += spec.adapter.adaroute.kernelSizes.reduce(0.0) { $0 + 2 * n * r * Double($1 * $1) } + 2 * 2 * n * d * 9
            }
            adapters = Double(v.depth) * perBlock
        case .lora, .mhr:
            // MHR mixes A and B per task first ([h,S]·[S, …], negligible), then runs as a LoRA of rank r.
            let r = Double(spec.adapter.method == .lora ? spec.adapter.lora.rank : spec.adapter.mhr.rank)
            let targets = spec.adapter.method == .lora ? spec.adapter.lora.targets : spec.adapter.mhr.targets
            adapters = Double(v.depth) * targets.reduce(0.0) { $0 + 2 * t * r * (dims[$1]!.0 + dims[$1]!.1) }
        case .paca:
            // No extra forward work (the trained columns live in W); the backward adds the r columns'
            // weight gradient, 2·T·r·out per target.
            let r = Double(spec.adapter.paca.rank)
            extraBackward = Double(v.depth) * spec.adapter.paca.targets.reduce(0.0) { $0 + 2 * t * r * dims[$1]!.1 }
        case .adaptformer:
            adapters = Double(v.depth) * 2 * 2 * t * d * Double(spec.adapter.adaptformer.bottleneck)
        case .linear, .full: break
        }
        let trainable = spec.adapter.method == .full ? backbone + head : head + adapters
        return (backbone + head + adapters, trainable, spec.adapter.method != .linear && spec.adapter.method != .full, extraBackward)
    }

    /// GFLOPs of one training step (batch) per the formula in the file header.
    public static func trainGflop(_ spec: ModelSpec, batch: Int) -> Double {
        let f = forwardFlops(spec)
        var backward = 2 * f.trainable + f.extraBackward
        if spec.adapter.method == .full { backward = 2 * f.total }
        else if f.backboneFrozenBelowAdapters { backward += f.total - f.trainable } // input gradients through frozen layers
        return Double(batch) * (f.total + backward) / 1e9
    }

    public static func inferGflop(_ spec: ModelSpec, batch: Int) -> Double { Double(batch) * forwardFlops(spec).total / 1e9 }

    /// The model (seeded), one synthetic batch (normal images, uniform labels) and AdamW, shared by the
    /// timed steps and the profile.
    static func setUp(_ s: ModelBenchmarkSettings, threads: Int) throws
        -> (spec: ModelSpec, model: SegmentationModel, images: Tensor, labels: [Int32], optimizer: AdamW) {
        Runtime.setThreads(threads)
        let spec = try spec(s)
        let model = spec.build(seed: 1)
        var rng = RandomGenerator(seed: 2)
        let height = spec.backbone.imageHeight, width = spec.backbone.imageWidth
        let images = Tensor.normal([s.batch, 3, height, width], using: &rng)
        let labels = (0..<(s.batch * height * width)).map { _ in Int32(rng.int(below: spec.classes)) }
        let optimizer = AdamW(groups: [ParameterGroup(parameters: model.trainableParameters(), weightDecay: 0.01)])
        return (spec, model, images, labels, optimizer)
    }

    public static func run(_ s: ModelBenchmarkSettings, training: Bool, threads: Int) throws -> ModelBenchmarkResult {
        let (spec, model, images, labels, optimizer) = try setUp(s, threads: threads)
        let context = ForwardContext()
        model.setTraining(training)
        var failure: Error?
        // Inference keeps each linear layer's packed weight panels across steps, as eval and predict do over a
        // dataset; training packs on every call (its weights change).
        let measure = { Stopwatch.measure(warmup: s.warmup, repeats: s.steps) {
            do {
                if training {
                    let (loss, _) = try model.loss(images, labels: labels, context: context)
                    loss.backward()
                    optimizer.step(learningRate: 1e-4)
                    model.zeroGrad()
                } else {
                    _ = Autograd.withNoGrad { model(images, context: context) }
                }
            } catch { failure = error }
        } }
        let timing = training ? measure() : PackedGEMM.reusingPackedWeights(measure)
        if let failure { throw failure }
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return ModelBenchmarkResult(seconds: timing, batch: s.batch,
                                    gflopPerStep: training ? trainGflop(spec, batch: s.batch) : inferGflop(spec, batch: s.batch),
                                    peakRSSBytes: Int(usage.ru_maxrss) * 1024)
    }
}

/// Where one training step's time goes: forward phases, backward by op, optimizer.
public struct StepProfile: Sendable {
    /// Forward phases in order (seconds per step): backbone (embedding → final norm, adapters
    /// included), neck, head, loss (upsampling + cross-entropy + auxiliary head).
    public var forward: [(String, Double)]
    /// Backward seconds per step by op name, largest first, with how many times the op ran per step.
    public var backward: [(name: String, seconds: Double, calls: Int)]
    public var backwardTotal: Double
    public var optimizer: Double
    public var step: Double { forward.reduce(0) { $0 + $1.1 } + backwardTotal + optimizer }
}

extension ModelBenchmark {
    /// Times `steps` training steps phase by phase (after one warm-up step) and averages them. The
    /// forward phases are cut at the model's probes (`patch_features`, the neck's last level,
    /// `logits_lowres`); the backward is timed per recorded op through `Autograd.backwardObserver`.
    public static func profile(_ s: ModelBenchmarkSettings, threads: Int, steps: Int) throws -> StepProfile {
        let (_, model, images, labels, optimizer) = try setUp(s, threads: threads)
        model.setTraining(true)
        let now = { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
        var marks: [String: Double] = [:]
        let context = ForwardContext()
        context.probe = { name, _ in
            if name == "patch_features" || name == "logits_lowres" || name.hasPrefix("neck.level") {
                marks[name.hasPrefix("neck.level") ? "neck" : name] = now()
            }
        }
        var forward: [String: Double] = [:]
        var backward: [String: (Double, Int)] = [:]
        var backwardTotal = 0.0, optimizerTotal = 0.0
        for step in 0...steps {
            let measured = step > 0
            let observer: ((String, Double) -> Void)? = measured ? { name, seconds in
                let old = backward[name] ?? (0, 0)
                backward[name] = (old.0 + seconds, old.1 + 1)
            } : nil
            marks = [:]
            let start = now()
            let (loss, _) = try model.loss(images, labels: labels, context: context)
            let forwardEnd = now()
            Autograd.observingBackward(observer) { loss.backward() }
            let backwardEnd = now()
            optimizer.step(learningRate: 1e-4)
            model.zeroGrad()
            guard measured else { continue }
            let backboneEnd = marks["patch_features"] ?? start
            let neckEnd = marks["neck"] ?? backboneEnd
            let headEnd = marks["logits_lowres"] ?? neckEnd
            for (phase, seconds) in [("backbone", backboneEnd - start), ("neck", neckEnd - backboneEnd),
                                     ("head", headEnd - neckEnd), ("loss", forwardEnd - headEnd)] {
                forward[phase, default: 0] += seconds
            }
            backwardTotal += backwardEnd - forwardEnd
            optimizerTotal += now() - backwardEnd
        }
        let n = Double(steps)
        return StepProfile(
            forward: ["backbone", "neck", "head", "loss"].map { ($0, (forward[$0] ?? 0) / n) },
            backward: backward.map { (name: $0.key, seconds: $0.value.0 / n, calls: $0.value.1 / steps) }.sorted { $0.seconds > $1.seconds },
            backwardTotal: backwardTotal / n, optimizer: optimizerTotal / n)
    }
}
