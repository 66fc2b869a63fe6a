// PaCA on the tiny random ViT shared with the baseline tests (TinySetup: D=32, 2 blocks, 32×48 images):
// identity at injection, the sync on every forward, merge, the column draw, parameter counts, which
// tensors learn, disabling, and the checkpoint paths (pretrained weights loaded after injection; a
// checkpoint loaded into a fresh pretrained backbone; a new idx restoring the old columns).
//
// Legend: B batch, D width, K in / N out features of a linear, r columns, s = alpha/r.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

enum PaCASetup {
    /// What AdapterInjector does for a method: frozen backbone, PaCA injected, trainable head.
    static func apply(_ config: PaCAConfig, to model: SegmentationModel, seed: UInt64 = 2) {
        var generator = RandomGenerator(seed: seed)
        model.backbone.setTrainable(false)
        PaCA.inject(config, into: model.backbone, generator: &generator)
        model.head.setTrainable(true)
    }

    /// Random P (so s·P differs from the pretrained columns), written in at the next forward.
    static func perturb(_ model: SegmentationModel, seed: UInt64 = 21, std: Float = 0.05) {
        var rng = RandomGenerator(seed: seed)
        for (_, _, adapter) in PaCA.adapters(in: model) {
            adapter.partial.assign(Tensor.normal(adapter.partial.shape, std: std, using: &rng))
        }
    }

    /// The backbone's own tensors (not the adapters') by name.
    static func weights(_ model: SegmentationModel) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: model.backbone.namedParameters().filter { !$0.0.contains("paca_") }.map { ($0.0, $0.1.values) })
    }

    /// Names of the tensors whose values differ (short failure messages instead of whole arrays).
    static func differing(_ a: [String: [Float]], _ b: [String: [Float]]) -> [String] {
        Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
    }
}

@Suite("PaCA (partial connection adaptation)")
struct PaCATests {
    static let all = PaCAConfig(rank: 4, alpha: 8, targets: [.fc2, .qkv, .fc1, .proj])

    // MARK: identity at injection

    @Test(arguments: [Float(8), Float(32)])  // s = 2 and 8: powers of two, exact
    func freshInjectionLeavesTheModelUnchanged(alpha: Float) {
        let images = TinySetup.images()
        for training in [false, true] {
            let model = TinySetup.model()
            model.setTraining(training)
            let base = TinySetup.logits(model, images: images)
            let before = PaCASetup.weights(model)
            PaCASetup.apply(PaCAConfig(rank: 4, alpha: alpha), to: model)
            model.setTraining(training)
            let adapted = TinySetup.logits(model, images: images)
            #expect(compare(adapted, base, rtol: 0, atol: 0).passed, "alpha \(alpha), training \(training): not the identity at init")
            #expect(PaCASetup.differing(PaCASetup.weights(model), before).isEmpty, "the synced weights changed")
        }
    }

    /// s = 1.5: s·(W/s) may differ from W by one rounding; the model moves by float32 noise only.
    @Test func nonPowerOfTwoScaleIsTheIdentityUpToRounding() {
        let images = TinySetup.images()
        let model = TinySetup.model()
        let base = TinySetup.logits(model, images: images)
        let before = PaCASetup.weights(model)
        PaCASetup.apply(PaCAConfig(rank: 8, alpha: 12), to: model)
        let adapted = TinySetup.logits(model, images: images)
        let result = compare(adapted, base, rtol: 1e-6, atol: 1e-7)
        #expect(result.passed, "\(result)")
        for (name, values) in PaCASetup.weights(model) {
            let old = before[name]!
            for i in 0..<values.count where values[i] != old[i] {
                #expect(Swift.abs(values[i] - old[i]) <= old[i].ulp, "\(name)[\(i)] moved by more than one ulp")
            }
        }
    }

    // MARK: sync, disable, merge

    /// W_eff follows P on every forward — consecutive training forwards and evaluation forwards alike.
    @Test func everyForwardWritesTheColumns() {
        let model = TinySetup.model()
        PaCASetup.apply(Self.all, to: model)
        let images = TinySetup.images()
        for (step, training) in [true, true, true, false, false].enumerated() {
            PaCASetup.perturb(model, seed: UInt64(30 + step))
            model.setTraining(training)
            _ = TinySetup.logits(model, images: images)
            for (path, linear, adapter) in PaCA.adapters(in: model) {
                #expect(Tensor.partialColumnsInSync(linear.weight, columns: adapter.columns, partial: adapter.partial,
                                                    scale: adapter.scaling), "forward \(step) (training \(training)): \(path) not synced")
            }
        }
    }

    @Test func disablingGivesTheBaseModelAndRestoresTheWeights() {
        let images = TinySetup.images()
        let model = TinySetup.model()
        let base = TinySetup.logits(model, images: images)
        let before = PaCASetup.weights(model)
        PaCASetup.apply(Self.all, to: model)
        PaCASetup.perturb(model)
        let adapted = TinySetup.logits(model, images: images)
        #expect(!compare(adapted, base, rtol: 1e-3, atol: 0).passed, "random P should move the logits")
        #expect(PaCASetup.differing(PaCASetup.weights(model), before).count > 0)

        for (_, _, adapter) in PaCA.adapters(in: model) { adapter.isEnabled = false }
        #expect(compare(TinySetup.logits(model, images: images), base, rtol: 0, atol: 0).passed)
        #expect(PaCASetup.differing(PaCASetup.weights(model), before).isEmpty, "disabled: the original columns are back")
        for (_, _, adapter) in PaCA.adapters(in: model) { adapter.isEnabled = true }
        #expect(compare(TinySetup.logits(model, images: images), adapted, rtol: 0, atol: 0).passed)

        for (_, linear, adapter) in PaCA.adapters(in: model) { adapter.restoreBase(linear) }
        #expect(PaCASetup.differing(PaCASetup.weights(model), before).isEmpty)
    }

    @Test func mergeRemovesTheAdaptersAndKeepsTheOutputs() {
        let images = TinySetup.images()
        let model = TinySetup.model()
        model.setTraining(false)
        let baseCount = model.parameterCount()
        PaCASetup.apply(Self.all, to: model)
        PaCASetup.perturb(model, seed: 22)
        let expected = TinySetup.logits(model, images: images)
        // The weights then hold another P's columns, and P moves back without a forward (as after an
        // optimizer step): merge must write the current P.
        PaCASetup.perturb(model, seed: 21)
        #expect(!compare(TinySetup.logits(model, images: images), expected, rtol: 0, atol: 0).passed)
        PaCASetup.perturb(model, seed: 22)

        #expect(PaCA.merge(model) == 8)
        #expect(PaCA.adapters(in: model).isEmpty)
        #expect(!model.stateDict().contains { $0.0.contains("paca_") })
        #expect(model.parameterCount() == baseCount)
        for block in model.backbone.blocks {
            for target in LoRATarget.allCases { #expect(LoRA.linear(target, in: block).adapter == nil) }
        }
        let merged = TinySetup.logits(model, images: images)
        let result = compare(merged, expected, rtol: 0, atol: 1e-6)
        #expect(result.passed, "merged logits: \(result)")
        #expect(compare(merged, expected, rtol: 0, atol: 0).passed, "the merged weight is W_eff itself: the same GEMM")
    }

    // MARK: the column draw

    @Test func columnsAreDistinctAndReproducibleFromTheSeed() {
        func columns(_ config: PaCAConfig, modelSeed: UInt64, injectSeed: UInt64) -> [String: [Int]] {
            let model = TinySetup.model(seed: modelSeed)
            PaCASetup.apply(config, to: model, seed: injectSeed)
            return Dictionary(uniqueKeysWithValues: PaCA.adapters(in: model).map { ($0.path, $0.adapter.columns) })
        }
        let seeded = PaCAConfig(rank: 8, alpha: 16, targets: [.qkv, .proj, .fc1, .fc2], seed: 7)
        let a = columns(seeded, modelSeed: 1, injectSeed: 2)
        #expect(a.count == 8)
        for (path, idx) in a {
            let k = path.hasSuffix("fc2") ? 128 : 32
            #expect(Set(idx).count == 8 && idx.allSatisfy { (0..<k).contains($0) }, "\(path): \(idx)")
        }
        #expect(Set(a.values).count == 8, "every layer draws its own columns")
        // A fixed seed decides the columns alone (not the model's generator), layer by layer, even with
        // fewer targets.
        #expect(columns(seeded, modelSeed: 5, injectSeed: 9) == a)
        var fewer = seeded
        fewer.targets = [.fc2]
        let onlyFc2 = columns(fewer, modelSeed: 3, injectSeed: 4)
        #expect(onlyFc2.count == 2 && onlyFc2.allSatisfy { a[$0.key] == $0.value })
        var other = seeded
        other.seed = 8
        #expect(columns(other, modelSeed: 1, injectSeed: 2) != a)
        // Without a seed: the model's generator decides, reproducibly.
        let unseeded = PaCAConfig(rank: 8)
        #expect(columns(unseeded, modelSeed: 1, injectSeed: 2) == columns(unseeded, modelSeed: 1, injectSeed: 2))
        #expect(columns(unseeded, modelSeed: 1, injectSeed: 2) != columns(unseeded, modelSeed: 1, injectSeed: 3))
    }

    /// randperm(K)[:r] in distribution: every column equally likely (3 of 10, 6000 draws: 1800 ± 5σ each).
    @Test func drawIsUniformOverColumns() {
        var rng = RandomGenerator(seed: 12)
        var counts = [Int](repeating: 0, count: 10)
        for _ in 0..<6000 {
            let idx = PaCA.drawColumns(inFeatures: 10, count: 3, generator: &rng)
            #expect(Set(idx).count == 3)
            for c in idx { counts[c] += 1 }
        }
        let sigma = (6000 * 0.3 * 0.7).squareRoot()
        #expect(counts.allSatisfy { Swift.abs(Double($0) - 1800) < 5 * sigma }, "\(counts)")
        #expect(PaCA.drawColumns(inFeatures: 5, count: 5, generator: &rng).sorted() == [0, 1, 2, 3, 4])
    }

    // MARK: what learns

    @Test(arguments: [PaCAConfig(rank: 4, alpha: 8), PaCAConfig(rank: 3, alpha: 6, targets: [.qkv, .fc2])])
    func trainableParametersAreTheColumnsAndTheHead(config: PaCAConfig) {
        let model = TinySetup.model()
        let total = model.parameterCount()
        PaCASetup.apply(config, to: model)
        let d = TinySetup.config.embedDim, hidden = TinySetup.config.mlpHidden, depth = TinySetup.config.depth
        let out: [LoRATarget: Int] = [.qkv: 3 * d, .proj: d, .fc1: hidden, .fc2: d]
        let head = TinySetup.classes * d + TinySetup.classes
        let columns = depth * Set(config.targets).reduce(0) { $0 + out[$1]! * config.rank }   // Σ out·r
        #expect(model.parameterCount(trainableOnly: true) == columns + head)
        #expect(model.parameterCount() == total + columns)
        #expect(model.trainableParameters().allSatisfy { $0.0.hasPrefix("head.") || $0.0.hasSuffix(".paca_P") })
        let shapes = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.0, $0.1.shape) })
        if config.targets.contains(.fc1) {
            #expect(shapes["blocks.0.mlp.fc1.paca_P"] == [hidden, config.rank])
        }
        #expect(shapes["blocks.1.attn.qkv.paca_P"] == [3 * d, config.rank])
        #expect(shapes["blocks.1.attn.qkv.paca_idx"] == [config.rank])
        #expect(shapes["blocks.0.mlp.fc2.paca_idx"] == [config.rank])
        #expect(model.namedBuffers().filter { $0.0.hasSuffix(".paca_idx") }.count == depth * Set(config.targets).count)
    }

    @Test func onlyPartialColumnsAndHeadLearn() throws {
        let model = TinySetup.model()
        PaCASetup.apply(Self.all, to: model)
        model.setTraining(true)
        let before = PaCASetup.weights(model)
        let (loss, _) = try model.loss(TinySetup.images(), labels: TinySetup.labels(), context: ForwardContext())
        loss.backward()
        for (name, p) in model.namedParameters() {
            #expect((p.grad != nil) == p.requiresGrad, "\(name): trainable \(p.requiresGrad), gradient \(p.grad != nil)")
        }
        let optimizer = AdamW(groups: [ParameterGroup(parameters: model.namedParameters(), weightDecay: 0.05)])
        optimizer.step(learningRate: 1e-2)
        #expect(PaCASetup.differing(PaCASetup.weights(model), before).isEmpty, "the optimizer touched a frozen weight")
        // The next forward writes the stepped columns — only those.
        _ = TinySetup.logits(model, images: TinySetup.images())
        let after = PaCASetup.weights(model)
        for (path, linear, adapter) in PaCA.adapters(in: model) {
            let k = linear.inFeatures, idx = Set(adapter.columns)
            let old = before[path + ".weight"]!, new = after[path + ".weight"]!
            var changed = 0
            for i in 0..<old.count where old[i] != new[i] {
                #expect(idx.contains(i % k), "\(path): column \(i % k) is not a PaCA column")
                changed += 1
            }
            #expect(changed > 0, "\(path): no column moved")
            #expect(before[path + ".bias"] == after[path + ".bias"])
        }
    }

    /// The layer through the Linear: gradients w.r.t. x and P (random P, so the columns are not W's).
    @Test func layerGradients() {
        var rng = RandomGenerator(seed: 31)
        let linear = Linear(weight: Tensor.normal([7, 5], using: &rng), bias: Tensor.normal([7], using: &rng))
        let adapter = PaCAAdapter(linear: linear, columns: [4, 0, 2], scaling: 1.5)
        adapter.partial.assign(Tensor.normal([7, 3], using: &rng))
        linear.adapter = adapter
        let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, adapter.partial]) { t in linear(t[0], context: ForwardContext()) }
        #expect(report.passed, "\(report)")
        #expect(report.checked == 30 + 21)
    }

    // MARK: checkpoints

    /// The app builds and injects on a random backbone, then loads the pretrained weights, then (resume,
    /// inference) a checkpoint. (1) After the pretrained load the model must be the pretrained model (P
    /// re-derived from the new W, not the random one). (2) A checkpoint (P, idx, head) loaded into a fresh
    /// build — other random init, other injected idx — gives the trained W_eff and the same logits.
    @Test func checkpointRoundTripIntoAFreshPretrainedBackbone() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let images = TinySetup.images()
        let pretrainedPath = dir.appendingPathComponent("pretrained.safetensors").path
        let pretrained = TinySetup.model(seed: 11)
        try pretrained.backbone.save(to: pretrainedPath)
        let pretrainedWeights = PaCASetup.weights(pretrained)

        // Run A: build, inject, load the pretrained backbone (after injection), train a few steps.
        let a = TinySetup.model(seed: 1)
        PaCASetup.apply(Self.all, to: a, seed: 2)
        _ = try a.backbone.loadPretrained(path: pretrainedPath)
        for ((_, mine), (_, theirs)) in zip(pretrained.head.namedParameters(), a.head.namedParameters()) { mine.assign(theirs) }
        #expect(compare(TinySetup.logits(a, images: images), TinySetup.logits(pretrained, images: images), rtol: 0, atol: 0).passed,
                "after loading pretrained weights the fresh adapter must be the identity")
        #expect(PaCASetup.differing(PaCASetup.weights(a), pretrainedWeights).isEmpty)
        let optimizer = AdamW(groups: [ParameterGroup(parameters: a.trainableParameters(), weightDecay: 0.05)])
        a.setTraining(true)
        for step in 0..<3 {
            a.zeroGrad()
            let (loss, _) = try a.loss(images, labels: TinySetup.labels(), context: ForwardContext(generator: RandomGenerator(seed: UInt64(step))))
            loss.backward()
            optimizer.step(learningRate: 1e-2)
        }
        a.setTraining(false)
        let trained = TinySetup.logits(a, images: images)
        let trainedWeights = PaCASetup.weights(a)
        #expect(PaCASetup.differing(trainedWeights, pretrainedWeights).count > 0)
        // The checkpoint: what PaCA trains plus its buffers (paca_idx), nothing of the frozen backbone.
        let checkpointPath = dir.appendingPathComponent("adapter_model.safetensors").path
        let checkpoint = a.trainableParameters() + a.namedBuffers().filter { $0.0.hasSuffix(".paca_idx") }
        #expect(checkpoint.count == 8 + 8 + 2)
        try a.save(to: checkpointPath, tensors: checkpoint)

        // Run B: another random init and another injected idx, then pretrained, then the checkpoint.
        let b = TinySetup.model(seed: 5)
        PaCASetup.apply(Self.all, to: b, seed: 6)
        let injected = PaCA.adapters(in: b).map(\.adapter.columns)
        #expect(injected != PaCA.adapters(in: a).map(\.adapter.columns))
        _ = try b.backbone.loadPretrained(path: pretrainedPath)
        let report = try b.load(SafeTensorsFile(path: checkpointPath))
        #expect(report.unexpected.isEmpty && report.loaded.count == checkpoint.count, "\(report)")
        b.setTraining(false)
        #expect(compare(TinySetup.logits(b, images: images), trained, rtol: 0, atol: 0).passed)
        #expect(PaCASetup.differing(PaCASetup.weights(b), trainedWeights).isEmpty, "B's weights are A's W_eff")
        #expect(PaCA.adapters(in: b).map(\.adapter.columns) == PaCA.adapters(in: a).map(\.adapter.columns))

        // Merged for inference: the same.
        PaCA.merge(b)
        #expect(compare(TinySetup.logits(b, images: images), trained, rtol: 0, atol: 0).passed)
    }

    /// A new idx after a sync (checkpoint loaded into a model that already ran): the old columns get their
    /// original values back; only the new columns hold s·P.
    @Test func aNewIndexRestoresTheOldColumns() {
        let model = TinySetup.model()
        let before = PaCASetup.weights(model)
        PaCASetup.apply(PaCAConfig(rank: 2, alpha: 4, targets: [.proj]), to: model)
        PaCASetup.perturb(model)
        _ = TinySetup.logits(model, images: TinySetup.images())
        let (path, linear, adapter) = PaCA.adapters(in: model)[0]
        let old = adapter.columns
        let fresh = (0..<linear.inFeatures).filter { !old.contains($0) }.prefix(2).map { $0 }
        adapter.indexBuffer.assign(Tensor(fresh.map { Float($0) }))
        _ = TinySetup.logits(model, images: TinySetup.images())
        let k = linear.inFeatures, original = before[path + ".weight"]!, now = linear.weight.values
        for o in 0..<linear.outFeatures {
            for c in 0..<k where !fresh.contains(c) { #expect(now[o * k + c] == original[o * k + c], "column \(c)") }
        }
        #expect(Tensor.partialColumnsInSync(linear.weight, columns: fresh, partial: adapter.partial, scale: adapter.scaling))
        adapter.restoreBase(linear)
        #expect(compare(linear.weight.values, original, rtol: 0, atol: 0).passed)
    }

    @Test func configDecodesWithDefaultsAndValidates() throws {
        let defaults = try JSONDecoder().decode(PaCAConfig.self, from: Data("{}".utf8))
        #expect(defaults == PaCAConfig(rank: 8, alpha: 16, targets: [.qkv, .proj, .fc1, .fc2], seed: nil))
        #expect(defaults.scaling == 2)
        let some = try JSONDecoder().decode(PaCAConfig.self, from: Data(#"{"rank": 16, "alpha": 64, "seed": 5, "targets": ["fc2"]}"#.utf8))
        #expect(some == PaCAConfig(rank: 16, alpha: 64, targets: [.fc2], seed: 5))
        #expect(some.scaling == 4)
        #expect(try JSONDecoder().decode(PaCAConfig.self, from: JSONEncoder().encode(some)) == some)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(PaCAConfig.self, from: Data(#"{"targets": ["q"]}"#.utf8)) }

        let vit = TinySetup.config
        #expect(PaCAConfig().problem(for: vit) == nil)
        #expect(PaCAConfig(rank: 0).problem(for: vit)?.key == "paca.rank")
        #expect(PaCAConfig(rank: 33, targets: [.qkv]).problem(for: vit)?.key == "paca.rank")
        #expect(PaCAConfig(rank: 33, targets: [.fc2]).problem(for: vit) == nil)   // fc2 reads the 128 hidden features
        #expect(PaCAConfig(alpha: 0).problem(for: vit)?.key == "paca.alpha")
        #expect(PaCAConfig(targets: []).problem(for: vit)?.key == "paca.targets")
    }
}
