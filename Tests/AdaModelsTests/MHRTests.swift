// The MHR / Poly routed LoRA on its own: a forward computed by hand, a float64 reference of the
// README equations on random shapes (single- and mixed-task batches), finite-difference gradients for
// x, lora_a, lora_b and module_logits (h ∈ {1, 2}, odd token counts, mixed tasks, with and without
// relaxed-Bernoulli noise), Poly = LoRA of the mixed factors, uniform routing = the MHR-μ collapse,
// the noise's determinism and absence in eval, init, routing reset, parameter names, config decoding,
// and the stop on an unknown task id.
//
// Legend: B batch, L tokens, D_in / D_out the Linear's sizes, h heads, S skills, r rank, T tasks.
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// A Linear with a routed adapter whose every tensor is random (B ≠ 0, Z spread) so every term matters.
struct RoutedLayer {
    let linear: Linear
    let adapter: MHRAdapter
    let config: MHRConfig

    init(inFeatures: Int, outFeatures: Int, heads: Int, skills: Int, rank: Int, tasks: Int, alpha: Float = 1.5,
         relaxedBernoulli: Bool = false, temperature: Float = 1, seed: UInt64 = 11) {
        var g = RandomGenerator(seed: seed)
        linear = Linear(inFeatures, outFeatures, generator: &g)
        linear.weight.requiresGrad = false
        linear.bias?.requiresGrad = false
        config = MHRConfig(skills: skills, heads: heads, rank: rank, alpha: alpha,
                           relaxedBernoulli: relaxedBernoulli, temperature: temperature)
        adapter = MHRAdapter(inFeatures: inFeatures, outFeatures: outFeatures, config: config, tasks: tasks,
                             name: "layer", generator: &g)
        adapter.loraA.assign(Tensor.uniform(adapter.loraA.shape, low: -1, high: 1, using: &g))
        adapter.loraB.assign(Tensor.uniform(adapter.loraB.shape, low: -1, high: 1, using: &g))
        adapter.routing.logits.assign(Tensor.uniform(adapter.routing.logits.shape, low: -1.5, high: 1.5, using: &g))
        linear.adapter = adapter
    }

    func callAsFunction(_ x: Tensor, taskIds: [Int], seed: UInt64 = 0) -> Tensor {
        linear(x, context: ForwardContext(taskIds: taskIds, generator: RandomGenerator(seed: seed)))
    }
}

/// The README equations in float64, sample by sample: y = x·Wᵀ + b + (alpha/r)·(x·Amix)·Bmix.
func referenceRoutedLinear(_ x: Tensor, _ layer: RoutedLayer, taskIds: [Int]) -> [Double] {
    let a = layer.adapter, w = layer.linear.weight, bias = layer.linear.bias
    let h = a.heads, s = a.skills, r = a.rank, din = a.inFeatures, dout = a.outFeatures
    let dh = din / h, oh = dout / h
    let batch = x.shape[0], tokens = x.count / (batch * din)
    let z = a.routing.logits, scaling = Double(layer.config.alpha) / Double(r)
    var y = [Double](repeating: 0, count: batch * tokens * dout)
    for b in 0..<batch {
        let t = taskIds.isEmpty ? 0 : taskIds[b]
        var weights = [Double](repeating: 0, count: h * s)
        for q in 0..<h {
            let p = (0..<s).map { 1 / (1 + Foundation.exp(-Double(z.data[t * h * s + q * s + $0]))) }
            let total = p.reduce(0, +) + 1e-12
            for k in 0..<s { weights[q * s + k] = p[k] / total }
        }
        var amix = [Double](repeating: 0, count: din * r)  // [D_in, r]
        var bmix = [Double](repeating: 0, count: r * dout) // [r, D_out]
        for q in 0..<h {
            for k in 0..<s {
                let wk = weights[q * s + k]
                for i in 0..<dh { for j in 0..<r {
                    amix[(q * dh + i) * r + j] += wk * Double(a.loraA.data[((q * s + k) * dh + i) * r + j])
                } }
                for j in 0..<r { for o in 0..<oh {
                    bmix[j * dout + q * oh + o] += wk * Double(a.loraB.data[((q * s + k) * r + j) * oh + o])
                } }
            }
        }
        for n in 0..<tokens {
            let row = x.data + (b * tokens + n) * din
            var u = [Double](repeating: 0, count: r)
            for j in 0..<r { for i in 0..<din { u[j] += Double(row[i]) * amix[i * r + j] } }
            for o in 0..<dout {
                var v = Double(bias?.data[o] ?? 0)
                for i in 0..<din { v += Double(row[i]) * Double(w.data[o * din + i]) }
                for j in 0..<r { v += scaling * u[j] * bmix[j * dout + o] }
                y[(b * tokens + n) * dout + o] = v
            }
        }
    }
    return y
}

enum MHRTiny {
    static let config = ViTConfig(embedDim: 16, depth: 2, heads: 2, mlpRatio: 2, patchSize: 4, imageHeight: 8, imageWidth: 12)

    static func model(_ mhr: MHRConfig, tasks: Int, seed: UInt64 = 3) -> SegmentationModel {
        var g = RandomGenerator(seed: seed)
        let backbone = VisionTransformer(config: config, generator: &g)
        let model = SegmentationModel(backbone: backbone, head: LinearHead(dim: config.embedDim, classes: 3, generator: &g))
        backbone.setTrainable(false)
        MHR.inject(mhr, tasks: tasks, into: backbone, generator: &g)
        return model
    }

    /// Random B and Z everywhere, so the adapters change the output.
    static func randomize(_ model: SegmentationModel, seed: UInt64 = 5) {
        var g = RandomGenerator(seed: seed)
        for (_, _, adapter) in MHR.adapters(in: model.backbone) {
            adapter.loraB.assign(Tensor.uniform(adapter.loraB.shape, low: -0.5, high: 0.5, using: &g))
            adapter.routing.logits.assign(Tensor.uniform(adapter.routing.logits.shape, low: -1, high: 1, using: &g))
        }
    }

    static func images(batch: Int, seed: UInt64 = 7) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor.normal([batch, 3, config.imageHeight, config.imageWidth], using: &g)
    }
}

@Suite("MHR routed LoRA")
struct MHRTests {
    /// h = 2, S = 2, r = 1, D = 2, Z = 0 (w = ½): Amix = [[(1+3)/2], [(2−2)/2]] = [[2], [0]],
    /// Bmix = [(1+1)/2, (4+0)/2] = [1, 2]; x = [1, 5]: x·Amix = 2, update [2, 4]; W = I, b = [0.5, −1].
    @Test func forwardByHand() {
        var g = RandomGenerator(seed: 1)
        let config = MHRConfig(skills: 2, heads: 2, rank: 1, alpha: 1)
        let adapter = MHRAdapter(inFeatures: 2, outFeatures: 2, config: config, tasks: 1, generator: &g)
        adapter.loraA.assign(Tensor([1, 3, 2, -2]))          // [h, S, 1, 1]
        adapter.loraB.assign(Tensor([1, 1, 4, 0]))           // [h, S, 1, 1]
        adapter.routing.logits.assign(Tensor.zeros([1, 4]))
        let linear = Linear(weight: Tensor(shape: [2, 2], values: [1, 0, 0, 1]), bias: Tensor([0.5, -1]))
        linear.adapter = adapter
        let y = linear(Tensor(shape: [1, 1, 2], values: [1, 5]), context: ForwardContext())
        #expect(y.shape == [1, 1, 2])
        #expect(y.values == [3.5, 8])
    }

    /// Against the float64 reference: shared task (one fused mixture), mixed tasks (per-sample
    /// mixtures), and empty task ids (task 0), for Poly and MHR.
    @Test(arguments: [1, 2, 4])
    func forwardMatchesTheFloat64Reference(heads: Int) {
        let layer = RoutedLayer(inFeatures: 12, outFeatures: 8, heads: heads, skills: 3, rank: 2, tasks: 3)
        var g = RandomGenerator(seed: 21)
        let x = Tensor.normal([3, 5, 12], using: &g)
        for ids in [[1, 1, 1], [2, 0, 2], []] {
            let y = layer(x, taskIds: ids)
            #expect(y.shape == [3, 5, 8])
            let result = compare(y.values, referenceRoutedLinear(x, layer, taskIds: ids).map { Float($0) }, rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "tasks \(ids): \(result)")
        }
    }

    @Test(arguments: [1, 2])
    func gradientsOfTheRoutedLayer(heads: Int) {
        for ids in [[2, 0, 2], [1, 1, 1]] {
            let layer = RoutedLayer(inFeatures: 6, outFeatures: 4, heads: heads, skills: 3, rank: 2, tasks: 3)
            var g = RandomGenerator(seed: 31)
            let x = Tensor.normal([3, 5, 6], using: &g, requiresGrad: true)
            let a = layer.adapter
            let report = GradCheck.run([x, a.loraA, a.loraB, a.routing.logits]) { t in layer(t[0], taskIds: ids) }
            #expect(report.passed, "h \(heads), tasks \(ids): \(report)")
        }
    }

    /// With relaxed-Bernoulli noise (training) the noise is a constant: gradients still flow through it
    /// and the temperature to Z. The same seed is replayed for every evaluation.
    @Test func gradientsWithRelaxedBernoulliNoise() {
        let layer = RoutedLayer(inFeatures: 6, outFeatures: 4, heads: 2, skills: 3, rank: 2, tasks: 3,
                                relaxedBernoulli: true, temperature: 0.7)
        var g = RandomGenerator(seed: 41)
        let x = Tensor.normal([3, 3, 6], using: &g, requiresGrad: true)
        let a = layer.adapter
        let report = GradCheck.run([x, a.loraA, a.loraB, a.routing.logits]) { t in layer(t[0], taskIds: [0, 0, 2], seed: 9) }
        #expect(report.passed, "\(report)")
    }

    /// Poly (h = 1) with one task is a plain LoRA with A = Σ_s w_s·A_s and B = Σ_s w_s·B_s (PEFT layout);
    /// in a mixed batch each sample is the LoRA of its own task's weights.
    @Test func polyEqualsLoRAOfTheMixedFactors() {
        let layer = RoutedLayer(inFeatures: 10, outFeatures: 6, heads: 1, skills: 4, rank: 3, tasks: 2, alpha: 2)
        let a = layer.adapter
        var g = RandomGenerator(seed: 51)
        let x = Tensor.normal([2, 7, 10], using: &g)
        func lora(task t: Int) -> Linear {
            let z = a.routing.logits
            let p = (0..<4).map { 1 / (1 + Foundation.exp(-Double(z.data[t * 4 + $0]))) }
            let w = p.map { $0 / (p.reduce(0, +) + 1e-12) }
            var rng = RandomGenerator(seed: 0)
            let plain = LoRAAdapter(inFeatures: 10, outFeatures: 6, config: LoRAConfig(rank: 3, alpha: 2), generator: &rng)
            for j in 0..<3 {
                for i in 0..<10 { plain.loraA.data[j * 10 + i] = Float((0..<4).reduce(0.0) { $0 + w[$1] * Double(a.loraA.data[($1 * 10 + i) * 3 + j]) }) }
                for o in 0..<6 { plain.loraB.data[o * 3 + j] = Float((0..<4).reduce(0.0) { $0 + w[$1] * Double(a.loraB.data[($1 * 3 + j) * 6 + o]) }) }
            }
            let linear = Linear(weight: layer.linear.weight, bias: layer.linear.bias)
            linear.adapter = plain
            return linear
        }
        let shared = layer(x, taskIds: [1, 1])
        let expected = lora(task: 1)(x, context: ForwardContext())
        #expect(compare(shared, expected, rtol: 1e-5, atol: 1e-6).passed, "\(compare(shared, expected, rtol: 1e-5, atol: 1e-6))")

        let mixed = layer(x, taskIds: [1, 0])
        for (b, t) in [1, 0].enumerated() {
            let sample = x.slice(axis: 0, range: b..<(b + 1))
            let ours = mixed.slice(axis: 0, range: b..<(b + 1))
            let result = compare(ours, lora(task: t)(sample, context: ForwardContext()), rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "sample \(b) (task \(t)): \(result)")
        }
        // The two tasks' routings differ, so the samples' maps differ (the check above is not vacuous).
        let other = lora(task: 0)(x, context: ForwardContext())
        #expect(!compare(shared, other, rtol: 1e-5, atol: 1e-6).passed)
    }

    /// Uniform routing (all Z equal) computes what the MHR-μ collapse computes, through a whole ViT with
    /// a mixed-task batch; the collapse leaves trainable LoRA factors with the same scaling.
    @Test(arguments: [MHRGranularity.finegrained, .coarsegrained])
    func uniformRoutingEqualsTheCollapsedLoRA(granularity: MHRGranularity) {
        let config = MHRConfig(skills: 3, heads: 2, rank: 2, alpha: 3, granularity: granularity)
        let model = MHRTiny.model(config, tasks: 3)
        MHRTiny.randomize(model)
        for (_, _, adapter) in MHR.adapters(in: model.backbone) {
            adapter.routing.logits.assign(Tensor.full(adapter.routing.logits.shape, -0.4))
        }
        let images = MHRTiny.images(batch: 3)
        model.setTraining(false)
        let routed = Autograd.withNoGrad { model(images, context: ForwardContext(taskIds: [2, 0, 1])) }

        MHR.collapseToLoRA(model.backbone)
        let loras = model.namedModules().compactMap { $0.1 as? LoRAAdapter }
        #expect(loras.count == 2 * 4)
        #expect(loras.allSatisfy { $0.scaling == 1.5 && $0.rank == 2 && $0.loraA.requiresGrad && $0.loraB.requiresGrad })
        #expect(MHR.routingParameters(model).isEmpty)
        let collapsed = Autograd.withNoGrad { model(images, context: ForwardContext(taskIds: [2, 0, 1])) }
        let result = compare(collapsed, routed, rtol: 1e-5, atol: 1e-6)
        #expect(result.passed, "\(result)")
        // Not vacuous: the adapters do change the output.
        let frozenOnly = MHRTiny.model(config, tasks: 3)
        let plain = Autograd.withNoGrad { frozenOnly(images, context: ForwardContext(taskIds: [2, 0, 1])) }
        #expect(!compare(plain, routed, rtol: 1e-5, atol: 1e-6).passed)
    }

    /// Relaxed Bernoulli: p = σ((ℓ + log u − log(1−u))/τ) with u from the context's generator — the same
    /// seed gives the same output, another seed another one; eval mode draws nothing and uses σ(ℓ).
    @Test func relaxedBernoulliIsSeededAndAbsentInEval() {
        let layer = RoutedLayer(inFeatures: 8, outFeatures: 4, heads: 2, skills: 3, rank: 2, tasks: 2,
                                relaxedBernoulli: true, temperature: 0.5)
        let a = layer.adapter
        var g = RandomGenerator(seed: 61)
        let x = Tensor.normal([2, 3, 8], using: &g)
        let first = layer(x, taskIds: [1, 1], seed: 5), again = layer(x, taskIds: [1, 1], seed: 5)
        let otherSeed = layer(x, taskIds: [1, 1], seed: 6)
        #expect(first.values == again.values)
        #expect(first.values != otherSeed.values)

        // The weights are the formula, with per-sample noise drawn in row-major order.
        var noiseSource = RandomGenerator(seed: 5)
        var replay = RandomGenerator(seed: 5)
        let weights = a.routingWeights(rows: [1, 1], noisy: true, generator: &replay)
        let z = a.routing.logits
        for row in 0..<2 {
            var p = [Double](repeating: 0, count: 6)
            for k in 0..<6 {
                let u = Double(min(max(noiseSource.nextFloat(), 1.1920929e-07), 1 - 1.1920929e-07))
                let logit = (Double(z.data[6 + k]) + Foundation.log(u) - Foundation.log(1 - u)) / 0.5
                p[k] = 1 / (1 + Foundation.exp(-logit))
            }
            for q in 0..<2 {
                let total = p[(q * 3)..<(q * 3 + 3)].reduce(0, +)
                for s in 0..<3 {
                    let expected = p[q * 3 + s] / total
                    #expect(abs(Double(weights.data[(row * 2 + q) * 3 + s]) - expected) <= 1e-6,
                            "row \(row) head \(q) skill \(s): \(weights.data[(row * 2 + q) * 3 + s]) vs \(expected)")
                }
            }
        }
        // Per-sample noise: the two rows of the same task differ.
        #expect(Array(weights.values[0..<6]) != Array(weights.values[6..<12]))

        layer.linear.setTraining(false)
        let context = ForwardContext(taskIds: [1, 1], generator: RandomGenerator(seed: 5))
        let before = context.generator.stateWords
        let eval = layer.linear(x, context: context)
        #expect(context.generator.stateWords == before, "eval drew routing noise")
        let plain = RoutedLayer(inFeatures: 8, outFeatures: 4, heads: 2, skills: 3, rank: 2, tasks: 2, temperature: 0.5)
        #expect(eval.values == plain(x, taskIds: [1, 1]).values)
        #expect(eval.values != first.values)
    }

    @Test func initialisationFollowsTheSpec() {
        let config = MHRConfig(skills: 3, heads: 2, rank: 2)
        let model = MHRTiny.model(config, tasks: 4)
        let adapters = MHR.adapters(in: model.backbone)
        #expect(adapters.map(\.0) == ["blocks.0.attn.qkv", "blocks.0.attn.proj", "blocks.0.mlp.fc1", "blocks.0.mlp.fc2",
                                      "blocks.1.attn.qkv", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2"])
        for (name, linear, adapter) in adapters {
            let din = linear.inFeatures, dout = linear.outFeatures
            #expect(adapter.loraA.shape == [2, 3, din / 2, 2] && adapter.loraB.shape == [2, 3, 2, dout / 2], "\(name)")
            let bound = (1 / Float(3).squareRoot()) / Float(din).squareRoot()
            let values = adapter.loraA.values
            #expect(values.allSatisfy { abs($0) <= bound } && values.max()! > 0.8 * bound && values.min()! < -0.8 * bound, "\(name) A bound \(bound)")
            #expect(adapter.loraB.values.allSatisfy { $0 == 0 })
            #expect(adapter.routing.logits.shape == [4, 6] && adapter.routing.logits.values.allSatisfy { abs($0) <= 1e-3 })
        }
        // B = 0: a fresh adapter leaves the model exactly as it was.
        let images = MHRTiny.images(batch: 2)
        var g = RandomGenerator(seed: 3)
        let backbone = VisionTransformer(config: MHRTiny.config, generator: &g)
        let plain = SegmentationModel(backbone: backbone, head: LinearHead(dim: MHRTiny.config.embedDim, classes: 3, generator: &g))
        let withAdapters = Autograd.withNoGrad { model(images, context: ForwardContext(taskIds: [3, 1])) }
        let without = Autograd.withNoGrad { plain(images, context: ForwardContext()) }
        #expect(withAdapters.values == without.values)
        // Same seed, same init.
        let twin = MHRTiny.model(config, tasks: 4)
        #expect(zip(twin.namedParameters(), model.namedParameters()).allSatisfy { $0.0.0 == $0.1.0 && $0.0.1.values == $0.1.1.values })
    }

    @Test func namesAndTrainableSet() throws {
        let fine = MHRTiny.model(MHRConfig(skills: 2, heads: 2, rank: 1, targets: [.fc2, .qkv]), tasks: 2)
        let trainable = Set(fine.trainableParameters().map(\.0))
        var expected: Set<String> = ["head.weight", "head.bias"]
        for i in 0..<2 {
            for layer in ["attn.qkv", "mlp.fc2"] {
                for tensor in ["lora_a", "lora_b", "module_logits"] { expected.insert("blocks.\(i).\(layer).\(tensor)") }
            }
        }
        #expect(trainable == expected)
        #expect(MHR.routingParameters(fine).map(\.0) == ["blocks.0.attn.qkv.module_logits", "blocks.0.mlp.fc2.module_logits",
                                                          "blocks.1.attn.qkv.module_logits", "blocks.1.mlp.fc2.module_logits"])

        // Coarsegrained: one Z, named once by the first adapted linear, used by every layer.
        let coarse = MHRTiny.model(MHRConfig(skills: 2, heads: 2, rank: 1, granularity: .coarsegrained), tasks: 3)
        let routing = MHR.routingParameters(coarse)
        #expect(routing.map(\.0) == ["blocks.0.attn.qkv.module_logits"])
        #expect(coarse.namedParameters().filter { $0.0.hasSuffix("module_logits") }.count == 1)
        #expect(MHR.adapters(in: coarse.backbone).allSatisfy { $0.2.routing.logits === routing[0].1 })
        // Its gradient collects every layer's contribution.
        MHRTiny.randomize(coarse)
        coarse.setTraining(true)
        let loss = try coarse.loss(MHRTiny.images(batch: 2), labels: [Int32](repeating: 1, count: 2 * 8 * 12),
                                    context: ForwardContext(taskIds: [0, 2])).loss
        loss.backward()
        let grad = routing[0].1.grad!.values
        #expect(grad[0..<4].contains { $0 != 0 } && grad[8..<12].contains { $0 != 0 } && grad[4..<8].allSatisfy { $0 == 0 },
                "only the used task rows (0, 2) get a gradient: \(grad)")
    }

    /// A new task: every Z becomes [tasks, h·S] within ±1e-3, keeps its trainable flag, and a shared Z
    /// stays shared.
    @Test(arguments: [MHRGranularity.finegrained, .coarsegrained])
    func resetRoutingForNewTasks(granularity: MHRGranularity) {
        let model = MHRTiny.model(MHRConfig(skills: 3, heads: 2, rank: 2, granularity: granularity), tasks: 5)
        MHRTiny.randomize(model)
        let before = MHR.routingParameters(model)
        before.last!.1.requiresGrad = false
        var g = RandomGenerator(seed: 8)
        MHR.resetRouting(model.backbone, tasks: 1, generator: &g)
        let after = MHR.routingParameters(model)
        #expect(after.map(\.0) == before.map(\.0))
        for ((name, old), (_, new)) in zip(before, after) {
            #expect(new !== old && new.shape == [1, 6], "\(name): \(new.shape)")
            #expect(new.values.allSatisfy { abs($0) <= 1e-3 } && new.values.contains { $0 != 0 })
            #expect(new.requiresGrad == old.requiresGrad)
        }
        let adapters = MHR.adapters(in: model.backbone)
        #expect(Set(adapters.map { ObjectIdentifier($0.2.routing.logits) }).count == (granularity == .coarsegrained ? 1 : adapters.count))
        // Task 0 routes; the old task ids are gone.
        let images = MHRTiny.images(batch: 2)
        let y = Autograd.withNoGrad { model(images, context: ForwardContext(taskIds: [0, 0])) }
        #expect(y.values.allSatisfy { $0.isFinite })
    }

    @Test func configDecodesWithDefaults() throws {
        let partial = try JSONDecoder().decode(MHRConfig.self, from: Data(#"{"heads": 1, "granularity": "coarsegrained"}"#.utf8))
        var expected = MHRConfig()
        expected.heads = 1
        expected.granularity = .coarsegrained
        #expect(partial == expected)
        #expect(MHRConfig().scaling == 0.25 && MHRConfig(rank: 2, alpha: 4).scaling == 2)
        #expect(MHRConfig().routingLr == 0.1 && MHRConfig().routingWeightDecay == 0)
        let full = MHRConfig(skills: 8, heads: 16, rank: 2, alpha: 2, targets: [.qkv], granularity: .coarsegrained,
                             relaxedBernoulli: true, temperature: 0.5, routingLr: 0.05, routingWeightDecay: 0.01)
        #expect(try JSONDecoder().decode(MHRConfig.self, from: JSONEncoder().encode(full)) == full)
    }

    @Test func anUnknownTaskIdStopsWithAMessageNamingIt() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var g = RandomGenerator(seed: 1)
            let linear = Linear(4, 4, generator: &g)
            linear.adapter = MHRAdapter(inFeatures: 4, outFeatures: 4, config: MHRConfig(skills: 2, heads: 2, rank: 1),
                                        tasks: 3, name: "blocks.0.attn.qkv", generator: &g)
            _ = linear(Tensor.zeros([2, 3, 4]), context: ForwardContext(taskIds: [0, 3]))
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("task id 3 of sample 1") && message.contains("blocks.0.attn.qkv"), "\(message.prefix(400))")
    }

    @Test func headsThatDoNotDivideALinearStopWithAMessage() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            var g = RandomGenerator(seed: 1)
            let backbone = VisionTransformer(config: MHRTiny.config, generator: &g)
            MHR.inject(MHRConfig(heads: 3, targets: [.fc2]), tasks: 1, into: backbone, generator: &g)
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("blocks.0.mlp.fc2: heads = 3 must divide"), "\(message.prefix(400))")
    }
}
