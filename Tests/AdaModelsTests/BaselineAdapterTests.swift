// The baselines (LoRA, AdaptFormer, linear probe, full fine-tuning) and AdaRoute, all applied by
// AdapterInjector to the same tiny random ViT: parameter counts against hand-derived formulas, which
// tensors learn, identity at init, LoRA merging, and gradient checks of each method's new layers.
//
// Legend: B batch, T tokens (with CLS), N patch tokens (grid h×w), D width, K classes, r rank, b bottleneck.
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// A method and its settings, named for the test log.
struct MethodCase: Sendable, CustomTestStringConvertible {
    let label: String
    let settings: AdapterSettings
    var testDescription: String { label }

    static let all: [MethodCase] = [
        MethodCase(label: "adaroute", settings: AdapterSettings(
            method: .adaroute, adaroute: AdaRouteConfig(rank: 8, routerHidden: 4, kernelSizes: [3, 5]))),
        MethodCase(label: "adaroute-token", settings: AdapterSettings(
            method: .adaroute, adaroute: AdaRouteConfig(rank: 8, routerHidden: 4, kernelSizes: []))),
        MethodCase(label: "lora-qkv", settings: AdapterSettings(method: .lora, lora: LoRAConfig(rank: 4))),
        MethodCase(label: "lora-all", settings: AdapterSettings(
            method: .lora, lora: LoRAConfig(rank: 4, alpha: 8, targets: [.fc2, .qkv, .fc1, .proj]))),
        MethodCase(label: "adaptformer", settings: AdapterSettings(
            method: .adaptformer, adaptformer: AdaptFormerConfig(bottleneck: 6))),
        MethodCase(label: "mhr", settings: AdapterSettings(
            method: .mhr, mhr: MHRConfig(skills: 3, heads: 2, rank: 2, targets: [.qkv, .fc2]))),
        MethodCase(label: "poly-coarse", settings: AdapterSettings(
            method: .mhr, mhr: MHRConfig(skills: 2, heads: 1, rank: 3, targets: [.proj, .fc1], granularity: .coarsegrained))),
        MethodCase(label: "paca", settings: AdapterSettings(method: .paca, paca: PaCAConfig(rank: 4, alpha: 8, targets: [.qkv, .proj, .fc1, .fc2]))),
        MethodCase(label: "linear", settings: AdapterSettings(method: .linear)),
        MethodCase(label: "full", settings: AdapterSettings(method: .full)),
    ]
}

/// The shared tiny setting: ViT D=32, 2 blocks, 2 heads, patch 8, 32×48 images (4×6 grid), 3 classes, batch 2.
enum TinySetup {
    static let config = ViTConfig(embedDim: 32, depth: 2, heads: 2, patchSize: 8, imageHeight: 32, imageWidth: 48)
    static let classes = 3
    static let batch = 2

    static func model(seed: UInt64 = 1, config: ViTConfig = config, classes: Int = classes) -> SegmentationModel {
        var generator = RandomGenerator(seed: seed)
        let backbone = VisionTransformer(config: config, generator: &generator)
        return SegmentationModel(backbone: backbone,
                                 head: LinearHead(dim: config.embedDim, classes: classes, generator: &generator))
    }

    static func apply(_ settings: AdapterSettings, to model: SegmentationModel, seed: UInt64 = 2) {
        var generator = RandomGenerator(seed: seed)
        AdapterInjector.apply(settings, to: model, generator: &generator)
    }

    static func images(seed: UInt64 = 3) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        return Tensor.normal([batch, 3, config.imageHeight, config.imageWidth], using: &rng)
    }

    /// Random labels with a few ignored (255) pixels.
    static func labels(seed: UInt64 = 4) -> [Int32] {
        var rng = RandomGenerator(seed: seed)
        return (0..<(batch * config.imageHeight * config.imageWidth)).map { _ in
            rng.int(below: 10) == 0 ? 255 : Int32(rng.int(below: classes))
        }
    }

    static func logits(_ model: SegmentationModel, images: Tensor, seed: UInt64 = 5) -> Tensor {
        Autograd.withNoGrad { model(images, context: ForwardContext(generator: RandomGenerator(seed: seed))) }
    }
}

/// Trainable and total parameter counts, derived by hand from the architecture (not by walking the model).
func expectedParameterCounts(_ settings: AdapterSettings, vit c: ViTConfig, classes k: Int) -> (trainable: Int, total: Int) {
    let d = c.embedDim, hidden = c.mlpHidden, p = c.patchSize, n = c.gridHeight * c.gridWidth, depth = c.depth
    // Block: norm1 + norm2 (4D), qkv 3D·D + 3D, proj D·D + D, fc1 hidden·D + hidden, fc2 D·hidden + D.
    let perBlock = 4 * d + (3 * d * d + 3 * d) + (d * d + d) + (hidden * d + hidden) + (d * hidden + d)
    // Patch conv D·3·p² + D, cls_token D, pos_embed (1 + N)·D, blocks, final norm 2D.
    let backbone = 3 * p * p * d + d + d + (1 + n) * d + depth * perBlock + 2 * d
    let head = k * d + k
    let added: Int
    switch settings.method {
    case .full:
        return (backbone + head, backbone + head)
    case .linear:
        added = 0
    case .lora:
        // r·(in + out) per adapted linear (A [r, in], B [out, r]); no biases.
        let r = settings.lora.rank
        let sizes: [LoRATarget: Int] = [.qkv: d + 3 * d, .proj: d + d, .fc1: d + hidden, .fc2: hidden + d]
        added = depth * Set(settings.lora.targets).reduce(0) { $0 + r * sizes[$1]! }
    case .mhr:
        // Inventory S·r·(in + out) per adapted linear (lora_a [h,S,in/h,r], lora_b [h,S,r,out/h]); routing
        // logits [T = 1, h·S] per linear (finegrained) or once for the model (coarsegrained).
        let m = settings.mhr
        let sizes: [LoRATarget: Int] = [.qkv: d + 3 * d, .proj: d + d, .fc1: d + hidden, .fc2: hidden + d]
        let layers = depth * Set(m.targets).count
        let routing = m.granularity == .finegrained ? layers * m.heads * m.skills : m.heads * m.skills
        added = depth * Set(m.targets).reduce(0) { $0 + m.skills * m.rank * sizes[$1]! } + routing
    case .paca:
        // P [out, r] per adapted linear (the column indices are a buffer).
        let outs: [LoRATarget: Int] = [.qkv: 3 * d, .proj: d, .fc1: hidden, .fc2: d]
        added = depth * Set(settings.paca.targets).reduce(0) { $0 + settings.paca.rank * outs[$1]! }
    case .adaptformer:
        // down D→b with bias, up b→D with bias, per block.
        let b = settings.adaptformer.bottleneck
        added = depth * (d * b + b + b * d + d)
    case .adaroute:
        let a = settings.adaroute
        let e = a.experts ?? depth, g = 2 + a.kernelSizes.count, r = a.rank, h = a.routerHidden, kernels = a.kernelSizes.count
        var adapter = 2 * d + d                                  // norm (LayerNorm), norm_gamma
        if !a.kernelSizes.isEmpty { adapter += 2 * (9 * d + d) } // dwconv1, dwconv2: 3×3 depthwise + bias
        adapter += (d * h + h) + (h * e * g + e * g)             // router.0, router.2
        if kernels >= 2 { adapter += (r * kernels + kernels) + 2 * (kernels - 1) } // mix, conv_res_scale
        adapter += (r * r + r) + 4 * d                           // proj; layer_scale/bias, res_scale/bias
        let center = 2 * e * r * d + a.kernelSizes.reduce(0) { $0 + e * r * $1 * $1 } // projA, projB, conv{k}
        added = depth * adapter + center
    }
    return (added + head, backbone + added + head)
}

@Suite("Baseline adapters (LoRA, AdaptFormer, linear, full) and AdaRoute on equal terms")
struct BaselineAdapterTests {
    // MARK: parameter counts

    @Test func backboneFormulaMatchesHandCountAndTimm() {
        // Tiny: 6144 + 32 + 32 + 800 + 2·12704 + 64; ViT-S/16 (timm vit_small_patch16_224 without its head).
        #expect(expectedParameterCounts(AdapterSettings(method: .full), vit: TinySetup.config, classes: 0).total == 32_480)
        let small = ViTConfig.preset("vit_small_patch16")!
        #expect(expectedParameterCounts(AdapterSettings(method: .full), vit: small, classes: 0).total == 21_665_664)
    }

    @Test(arguments: MethodCase.all)
    func parameterCountsMatchFormula(method: MethodCase) {
        let model = TinySetup.model()
        TinySetup.apply(method.settings, to: model)
        let expected = expectedParameterCounts(method.settings, vit: TinySetup.config, classes: TinySetup.classes)
        #expect(model.parameterCount(trainableOnly: true) == expected.trainable)
        #expect(model.parameterCount() == expected.total)
        // Trainable names are the method's own (plus the head), named as their references name them.
        let trainable = model.trainableParameters().map(\.0)
        let pattern: (String) -> Bool
        switch method.settings.method {
        case .lora: pattern = { $0.hasSuffix(".lora_A") || $0.hasSuffix(".lora_B") }
        case .adaptformer: pattern = { $0.contains(".adaptmlp.down_proj.") || $0.contains(".adaptmlp.up_proj.") }
        case .adaroute: pattern = { $0.hasPrefix("adapters.") || $0.hasPrefix("expert.") }
        case .mhr: pattern = { $0.hasSuffix(".lora_a") || $0.hasSuffix(".lora_b") || $0.hasSuffix(".module_logits") }
        case .paca: pattern = { $0.hasSuffix(".paca_P") }
        case .linear: pattern = { _ in false }
        case .full: pattern = { _ in true }
        }
        let stray = trainable.filter { !$0.hasPrefix("head.") && !pattern($0) }
        #expect(stray.isEmpty, "unexpected trainable tensors: \(stray)")
    }

    @Test func parameterNamesFollowPEFTAndAdaptFormer() {
        let lora = TinySetup.model()
        TinySetup.apply(AdapterSettings(method: .lora, lora: LoRAConfig(rank: 4, targets: [.qkv, .fc2])), to: lora)
        let loraNames = Dictionary(uniqueKeysWithValues: lora.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(loraNames["blocks.0.attn.qkv.lora_A"] == [4, 32])
        #expect(loraNames["blocks.1.attn.qkv.lora_B"] == [96, 4])
        #expect(loraNames["blocks.1.mlp.fc2.lora_A"] == [4, 128])
        #expect(loraNames["blocks.1.mlp.fc2.lora_B"] == [32, 4])
        #expect(loraNames["blocks.0.attn.proj.lora_A"] == nil)

        let adaptformer = TinySetup.model()
        TinySetup.apply(AdapterSettings(method: .adaptformer), to: adaptformer)
        let names = Dictionary(uniqueKeysWithValues: adaptformer.namedParameters().map { ($0.0, $0.1.shape) })
        #expect(names["blocks.0.adaptmlp.down_proj.weight"] == [64, 32])
        #expect(names["blocks.0.adaptmlp.down_proj.bias"] == [64])
        #expect(names["blocks.1.adaptmlp.up_proj.weight"] == [32, 64])
        #expect(names["blocks.1.adaptmlp.up_proj.bias"] == [32])
    }

    @Test func initialisationFollowsTheReferences() {
        let model = TinySetup.model()
        TinySetup.apply(AdapterSettings(method: .lora, lora: LoRAConfig(rank: 8, targets: [.fc2])), to: model)
        let adapter = model.backbone.blocks[0].mlp.fc2.adapter as! LoRAAdapter
        let bound = 1 / Float(128).squareRoot()                          // kaiming_uniform(a=√5), fan_in 128
        #expect(adapter.loraA.values.allSatisfy { Swift.abs($0) <= bound })
        #expect(adapter.loraA.values.map { Swift.abs($0) }.max()! > 0.8 * bound)
        #expect(adapter.loraB.values.allSatisfy { $0 == 0 })
        #expect(adapter.scaling == 1)
        #expect(LoRAConfig(rank: 16, alpha: 32).scaling == 2)

        let af = TinySetup.model()
        TinySetup.apply(AdapterSettings(method: .adaptformer), to: af)
        let branch = af.backbone.blocks[1].mlpAdapter as! AdaptFormerAdapter
        let downBound = 1 / Float(32).squareRoot()
        #expect(branch.downProj.weight.values.allSatisfy { Swift.abs($0) <= downBound })
        #expect(branch.downProj.weight.values.map { Swift.abs($0) }.max()! > 0.8 * downBound)
        for zero in [branch.downProj.bias!, branch.upProj.weight, branch.upProj.bias!] {
            #expect(zero.values.allSatisfy { $0 == 0 })
        }
        #expect(branch.scale == 0.1 && branch.dropout == 0.1)
    }

    @Test func settingsDecodeWithDefaults() throws {
        let json = #"{"method": "lora", "lora": {"rank": 4, "targets": ["qkv", "fc1"]}, "adaptformer": {"scale": 0.5}}"#
        let settings = try JSONDecoder().decode(AdapterSettings.self, from: Data(json.utf8))
        #expect(settings.method == .lora)
        #expect(settings.lora == LoRAConfig(rank: 4, alpha: nil, dropout: 0, targets: [.qkv, .fc1]))
        #expect(settings.adaptformer == AdaptFormerConfig(bottleneck: 64, scale: 0.5, dropout: 0.1))
        #expect(settings.adaroute == AdaRouteConfig())
        let roundTrip = try JSONDecoder().decode(AdapterSettings.self, from: JSONEncoder().encode(settings))
        #expect(roundTrip == settings)
        #expect(throws: DecodingError.self) {
            try JSONDecoder().decode(AdapterSettings.self, from: Data(#"{"method": "lora", "lora": {"targets": ["q"]}}"#.utf8))
        }
        #expect(AdapterMethodKind.allCases.map(\.rawValue) == ["adaroute", "lora", "adaptformer", "mhr", "paca", "linear", "full"])
    }

    // MARK: what learns

    @Test(arguments: MethodCase.all)
    func onlyTrainableParametersGetGradientsAndChange(method: MethodCase) throws {
        let model = TinySetup.model()
        TinySetup.apply(method.settings, to: model)
        model.setTraining(true)
        let before = model.namedParameters().map { ($0.0, $0.1.values) }
        let context = ForwardContext(generator: RandomGenerator(seed: 9))
        let (loss, _) = try model.loss(TinySetup.images(), labels: TinySetup.labels(), context: context)
        #expect(loss.item.isFinite)
        loss.backward()
        var nonZeroGradients = 0
        for (name, p) in model.namedParameters() {
            #expect((p.grad != nil) == p.requiresGrad, "\(name): trainable \(p.requiresGrad), gradient \(p.grad != nil)")
            if let g = p.grad, g.values.contains(where: { $0 != 0 }) { nonZeroGradients += 1 }
        }
        #expect(nonZeroGradients > 0)
        // Every parameter goes to the optimizer, as a careless loop would pass them: frozen ones have no
        // gradient, so they must stay bit-identical.
        let optimizer = AdamW(groups: [ParameterGroup(parameters: model.namedParameters(), weightDecay: 0.05)])
        optimizer.step(learningRate: 1e-2)
        var changed = 0
        for ((name, p), (_, old)) in zip(model.namedParameters(), before) {
            if !p.requiresGrad {
                #expect(p.values == old, "frozen \(name) changed")
            } else if let g = p.grad, g.values.contains(where: { $0 != 0 }) {
                #expect(p.values != old, "trainable \(name) with a gradient did not change")
                changed += 1
            }
        }
        #expect(changed == nonZeroGradients)
    }

    // MARK: identity at init, disabling, merging

    @Test(arguments: MethodCase.all.filter { ["lora-qkv", "lora-all", "adaptformer"].contains($0.label) })
    func startsAsTheFrozenModel(method: MethodCase) {
        let images = TinySetup.images()
        for training in [false, true] {
            let model = TinySetup.model()
            model.setTraining(training)
            let base = TinySetup.logits(model, images: images)
            TinySetup.apply(method.settings, to: model)
            model.setTraining(training)
            let adapted = TinySetup.logits(model, images: images)
            #expect(adapted.values == base.values, "\(method.label) (training \(training)) is not the identity at init")
        }
    }

    @Test func loraDisableAndMerge() {
        let images = TinySetup.images()
        let model = TinySetup.model()
        model.setTraining(false)
        let base = TinySetup.logits(model, images: images)
        TinySetup.apply(AdapterSettings(method: .lora, lora: LoRAConfig(rank: 4, alpha: 8, targets: [.qkv, .proj, .fc1, .fc2])),
                        to: model)
        model.setTraining(false)
        var rng = RandomGenerator(seed: 21)
        var adapters: [LoRAAdapter] = []
        for (_, module) in model.namedModules() {
            if let adapter = module as? LoRAAdapter {
                adapter.loraB.assign(Tensor.normal(adapter.loraB.shape, std: 0.05, using: &rng))
                adapters.append(adapter)
            }
        }
        #expect(adapters.count == 8)
        let adapted = TinySetup.logits(model, images: images)
        #expect(!compare(adapted, base, rtol: 1e-3, atol: 0).passed, "random B should move the logits")

        // Disabled (unmerged): exactly the base model.
        for adapter in adapters { adapter.isEnabled = false }
        #expect(TinySetup.logits(model, images: images).values == base.values)
        for adapter in adapters { adapter.isEnabled = true }

        let merged = LoRA.mergeAll(in: model)
        #expect(merged == 8)
        #expect(!model.namedParameters().contains { $0.0.contains("lora_") })
        #expect(model.parameterCount() == expectedParameterCounts(AdapterSettings(method: .linear), vit: TinySetup.config,
                                                                  classes: TinySetup.classes).total)
        let after = TinySetup.logits(model, images: images)
        let result = compare(after, adapted, rtol: 1e-5, atol: 0)
        #expect(result.passed, "merged logits: \(result)")
    }

    @Test func loraMergeFoldsScaledProduct() {
        // W [3, 2], A [1, 2], B [3, 1], scaling 2: W + 2·B·A.
        let linear = Linear(weight: Tensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1]), bias: nil)
        var generator = RandomGenerator(seed: 1)
        let adapter = LoRAAdapter(inFeatures: 2, outFeatures: 3, config: LoRAConfig(rank: 1, alpha: 2), generator: &generator)
        adapter.loraA.assign(Tensor([1, -1]))
        adapter.loraB.assign(Tensor([1, 2, 0]))
        linear.adapter = adapter
        adapter.merge(into: linear)
        #expect(linear.weight.values == [3, -2, 4, -3, 1, 1])
        #expect(linear.adapter == nil)
    }

    // MARK: forward by hand

    @Test func loraLinearForwardByHand() {
        // base [1.5, 1, 5]; t = x·Aᵀ = 1 − 2 = −1; scaling 2 · t·Bᵀ = [−2, −4, 0] → [−0.5, −3, 5].
        let x = Tensor(shape: [1, 2], values: [1, 2])
        let w = Tensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1])
        let b = Tensor([0.5, -1, 2])
        let a = Tensor(shape: [1, 2], values: [1, -1]), bMatrix = Tensor(shape: [3, 1], values: [1, 2, 0])
        #expect(x.loraLinear(weight: w, bias: b, loraInput: x, a: a, b: bMatrix, scaling: 2).values == [-0.5, -3, 5])
        // A separate (dropped-out) LoRA input: xd = [0, 4] → t = −4 → [1.5 − 8, 1 − 16, 5].
        let xd = Tensor(shape: [1, 2], values: [0, 4])
        #expect(x.loraLinear(weight: w, bias: b, loraInput: xd, a: a, b: bMatrix, scaling: 2).values == [-6.5, -15, 5])
    }

    @Test func adaptFormerBranchForwardByHand() {
        // x = [1, −2]; down [[1, 1], [1, 0]] + [0, 0.5] → [−1, 1.5] → relu [0, 1.5];
        // up [[2, 1], [0, −2]] + [1, 0] → [2.5, −3]; · 0.1 → [0.25, −0.3].
        var generator = RandomGenerator(seed: 1)
        let branch = AdaptFormerAdapter(dim: 2, config: AdaptFormerConfig(bottleneck: 2, scale: 0.1, dropout: 0),
                                        generator: &generator)
        branch.downProj.weight.assign(Tensor([1, 1, 1, 0]))
        branch.downProj.bias!.assign(Tensor([0, 0.5]))
        branch.upProj.weight.assign(Tensor([2, 1, 0, -2]))
        branch.upProj.bias!.assign(Tensor([1, 0]))
        let y = branch(Tensor(shape: [1, 1, 2], values: [1, -2]), context: ForwardContext())
        #expect(y.shape == [1, 1, 2])
        #expect(compare(y.values, [0.25, -0.3], rtol: 0, atol: 1e-7).passed, "\(y)")
        // scaledLinear on its own: 0.5·([1.5, 1, 5]).
        let x = Tensor(shape: [1, 2], values: [1, 2])
        let w = Tensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1])
        #expect(x.scaledLinear(w, bias: Tensor([0.5, -1, 2]), scale: 0.5).values == [0.75, 0.5, 2.5])
        #expect(x.scaledLinear(w, bias: nil, scale: 0.5).values == [0.5, 1, 1.5])
    }

    @Test func adaptFormerDropoutOnlyInTraining() {
        var generator = RandomGenerator(seed: 3)
        let branch = AdaptFormerAdapter(dim: 6, config: AdaptFormerConfig(bottleneck: 16, scale: 1, dropout: 0.5),
                                        generator: &generator)
        branch.upProj.weight.assign(Tensor.normal(branch.upProj.weight.shape, using: &generator))
        let x = Tensor.normal([2, 5, 6], using: &generator)
        branch.setTraining(false)
        let evalA = branch(x, context: ForwardContext(generator: RandomGenerator(seed: 1)))
        let evalB = branch(x, context: ForwardContext(generator: RandomGenerator(seed: 2)))
        #expect(evalA.values == evalB.values)
        branch.setTraining(true)
        let trainA = branch(x, context: ForwardContext(generator: RandomGenerator(seed: 1)))
        let trainB = branch(x, context: ForwardContext(generator: RandomGenerator(seed: 2)))
        #expect(trainA.values != evalA.values && trainA.values != trainB.values)
    }

    // MARK: gradient checks

    /// The LoRA layer w.r.t. x, A, B (random, non-zero) and — when the base trains — W and b; with and
    /// without dropout (seeded inside the function so every evaluation draws the same mask).
    @Test(arguments: [(Float(0), true), (Float(0), false), (Float(0.4), true), (Float(0.4), false)])
    func loraLayerGradients(dropout: Float, trainBase: Bool) {
        var rng = RandomGenerator(seed: 31)
        let linear = Linear(weight: Tensor.normal([7, 5], using: &rng, requiresGrad: trainBase),
                            bias: Tensor.normal([7], using: &rng, requiresGrad: trainBase))
        let adapter = LoRAAdapter(inFeatures: 5, outFeatures: 7, config: LoRAConfig(rank: 3, alpha: 6, dropout: dropout),
                                  generator: &rng)
        adapter.loraB.assign(Tensor.normal([7, 3], using: &rng))
        linear.adapter = adapter
        let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, adapter.loraA, adapter.loraB, linear.weight, linear.bias!]) { t in
            linear(t[0], context: ForwardContext(generator: RandomGenerator(seed: 17)))
        }
        #expect(report.passed, "\(report)")
        #expect(report.checked == 30 + 15 + 21 + (trainBase ? 35 + 7 : 0))
    }

    /// The AdaptFormer branch w.r.t. x and all four tensors (up weight random, non-zero). Inputs are
    /// drawn until every ReLU pre-activation is ≥ 0.05 away from the kink, where finite differences
    /// (step 1e-2 moves a pre-activation by < 0.03 here) would be meaningless.
    @Test(arguments: [Float(0), Float(0.25)])
    func adaptFormerBranchGradients(dropout: Float) throws {
        var seed: UInt64 = 40
        var found: (AdaptFormerAdapter, Tensor)? = nil
        while found == nil && seed < 140 {
            var rng = RandomGenerator(seed: seed)
            let branch = AdaptFormerAdapter(dim: 5, config: AdaptFormerConfig(bottleneck: 4, scale: 0.3, dropout: dropout),
                                            generator: &rng)
            branch.downProj.bias!.assign(Tensor.normal([4], std: 0.5, using: &rng))
            branch.upProj.weight.assign(Tensor.normal([5, 4], using: &rng))
            branch.upProj.bias!.assign(Tensor.normal([5], using: &rng))
            let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)
            let pre = Autograd.withNoGrad { x.linear(branch.downProj.weight, bias: branch.downProj.bias) }
            if pre.values.allSatisfy({ Swift.abs($0) >= 0.05 }) { found = (branch, x) }
            seed += 1
        }
        let (branch, x) = try #require(found, "no input with pre-activations away from the ReLU kink")
        let report = GradCheck.run([x, branch.downProj.weight, branch.downProj.bias!, branch.upProj.weight,
                                    branch.upProj.bias!]) { t in
            branch(t[0], context: ForwardContext(generator: RandomGenerator(seed: 23)))
        }
        #expect(report.passed, "\(report)")
        #expect(report.checked == 30 + 20 + 4 + 20 + 5)
    }

    /// A whole tiny AdaRoute adapter, built by AdapterInjector, on an odd 3×5 grid: gradients w.r.t. its
    /// input, the shared projA, router.0.weight and (conv path) conv_res_scale. The expert center and
    /// norm_gamma are redrawn at unit-ish scale so every path carries an O(1) gradient.
    @Test(arguments: [[Int](), [3, 5]])
    func adaRouteAdapterGradients(kernels: [Int]) throws {
        let config = ViTConfig(embedDim: 6, depth: 2, heads: 2, patchSize: 4, imageHeight: 12, imageWidth: 20)
        let model = TinySetup.model(seed: 5, config: config, classes: 2)
        TinySetup.apply(AdapterSettings(method: .adaroute, adaroute: AdaRouteConfig(rank: 4, routerHidden: 3, kernelSizes: kernels)),
                        to: model, seed: 6)
        let adapter = try #require(model.blockAdapters[1] as? AdaRouteAdapter)
        let center = try #require(model.expert)
        var rng = RandomGenerator(seed: 7)
        for (_, p) in center.namedParameters() { p.assign(Tensor.normal(p.shape, std: 0.4, using: &rng)) }
        adapter.normGamma.assign(Tensor.normal([6], std: 0.5, using: &rng))
        adapter.routerIn.weight.assign(Tensor.normal(adapter.routerIn.weight.shape, std: 0.7, using: &rng))
        if let s = adapter.convResScale { s.assign(Tensor.normal(s.shape, mean: 1, std: 0.3, using: &rng)) }
        let (h, w) = (config.gridHeight, config.gridWidth)
        #expect(h == 3 && w == 5)
        let x = Tensor.normal([2, h * w, 6], using: &rng, requiresGrad: true)
        var inputs = [x, center.projA, adapter.routerIn.weight]
        if let s = adapter.convResScale { inputs.append(s) }
        #expect(inputs.count == (kernels.isEmpty ? 3 : 4))
        let run = { (t: [Tensor]) in adapter(t[0], gridHeight: h, gridWidth: w, context: ForwardContext(), name: "adapter1") }
        let report = GradCheck.run(inputs, run)
        #expect(report.passed, "\(report)")
        #expect(report.checked == inputs.reduce(0) { $0 + $1.count })
        // Non-trivial: every checked tensor's gradient is well above the check's absolute tolerance.
        model.zeroGrad()
        x.grad = nil
        run(inputs).square().sum().backward()
        for t in inputs {
            let largest = try #require(t.grad).values.map { Swift.abs($0) }.max()!
            #expect(largest > 1e-2, "gradient of \(t.shape) is only \(largest)")
        }
    }

    // MARK: ViT-S/16 report

    @Test func vitSmallParameterCounts() {
        let small = ViTConfig.preset("vit_small_patch16")!
        #expect(small.imageHeight == 224 && small.imageWidth == 224 && small.embedDim == 384 && small.depth == 12)
        let methods: [(String, AdapterSettings)] = [
            ("adaroute", AdapterSettings(method: .adaroute)), ("lora", AdapterSettings(method: .lora)),
            ("adaptformer", AdapterSettings(method: .adaptformer)), ("linear", AdapterSettings(method: .linear)),
            ("full", AdapterSettings(method: .full)),
        ]
        var lines = ["ViT-S/16 224², LinearHead: method | K=11 trainable / total | K=150 trainable / total"]
        for (label, settings) in methods {
            let model = TinySetup.model(seed: 1, config: small, classes: 11)
            TinySetup.apply(settings, to: model)
            var row = "\(label.padding(toLength: 11, withPad: " ", startingAt: 0))"
            for classes in [11, 150] {
                if classes != 11 {
                    var generator = RandomGenerator(seed: 8)
                    model.head = LinearHead(dim: small.embedDim, classes: classes, generator: &generator)
                    model.head.setTrainable(true)
                }
                let trainable = model.parameterCount(trainableOnly: true), total = model.parameterCount()
                let expected = expectedParameterCounts(settings, vit: small, classes: classes)
                #expect(trainable == expected.trainable && total == expected.total, "\(label) K=\(classes)")
                row += " | \(trainable) / \(total) (\(String(format: "%.2f", 100 * Double(trainable) / Double(total))) %)"
            }
            lines.append(row)
        }
        print(lines.joined(separator: "\n"))
    }
}
