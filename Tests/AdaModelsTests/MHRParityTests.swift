// Parity of the MHR routed LoRA with the PyTorch reference (shared/fixtures/seeds_parity,
// `mhr_lora.safetensors`, section "mhr_lora" of the README there). Every size — image, depth, width,
// attention heads, tasks T, skills S, routing heads h, rank r, alpha, adapted linears — comes from the
// file's shapes and metadata, so a fixture regenerated with another seed or size passes unchanged.
// Note the metadata's `heads` is MHR's h; the attention head count is `num_heads`.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// The fixture's ViT + linear head with MHR injected and `param.*` loaded.
struct MHRFixture {
    static let file = "seeds_parity/mhr_lora.safetensors"
    let file: SafeTensorsFile
    let model: SegmentationModel
    let images: Tensor
    let labels: [Int32]
    let taskIds: [Int]
    let config: MHRConfig
    let tasks: Int
    let report: LoadReport

    init() throws {
        let file = try Fixtures.open(Self.file)
        self.file = file
        let shape = { (name: String) -> [Int] in file.entry(name)?.shape ?? [] }
        let meta = file.metadataValue
        images = try file.tensor("input.images")
        labels = try file.fixtureLabels()
        taskIds = try file.integers("input.task_ids").values
        // `heads` in this file is MHR's h; the attention head count is `num_heads`.
        let vit = try file.fixtureViTConfig(headsKey: "num_heads")
        let dim = vit.embedDim

        // Adapted linears: those of block 0 with an inventory; the metadata list must agree.
        let byPath: [String: LoRATarget] = ["attn.qkv": .qkv, "attn.proj": .proj, "mlp.fc1": .fc1, "mlp.fc2": .fc2]
        let adaptedPaths = file.names.compactMap { name -> String? in
            guard name.hasPrefix("param.blocks.0."), name.hasSuffix(".lora_a") else { return nil }
            return String(name.dropFirst("param.blocks.0.".count).dropLast(".lora_a".count))
        }
        let targets = LoRATarget.allCases.filter { t in adaptedPaths.contains { byPath[$0] == t } }
        #expect(targets.count == adaptedPaths.count, "unknown adapted linears in \(adaptedPaths)")
        let listed = try meta("targets").split(separator: ",").map { String($0) }
        #expect(Set(listed) == Set(adaptedPaths), "metadata targets \(listed) vs tensors \(adaptedPaths)")
        let first = "param.blocks.0." + (adaptedPaths.first ?? "")
        let inventory = shape(first + ".lora_a")                                      // [h, S, D_in/h, r]
        let routed = file.entry(first + ".module_logits") != nil
        let everyLayerRouted = file.names.filter { $0.hasSuffix(".lora_a") && $0.hasPrefix("param.") }.allSatisfy {
            file.entry(String($0.dropLast(".lora_a".count)) + ".module_logits") != nil
        }
        #expect(routed, "no routing logits next to \(first).lora_a")
        tasks = shape(first + ".module_logits")[0]
        guard let alpha = Float(try meta("alpha")) else {
            throw SafeTensorsError.malformedHeader(file: file.path, reason: "alpha is not a number")
        }
        let routing = try meta("routing")
        #expect(routing == "sigmoid", "fixture routing '\(routing)': only plain sigmoid routing is deterministic")
        config = MHRConfig(skills: inventory[1], heads: inventory[0], rank: inventory[3], alpha: alpha, targets: targets,
                           granularity: everyLayerRouted ? .finegrained : .coarsegrained, relaxedBernoulli: routing != "sigmoid")
        // The metadata repeats the sizes; they must agree with the shapes we built from.
        let listedSizes = try ["skills", "heads", "rank", "tasks"].map { Int(try meta($0)) }
        #expect(listedSizes == [config.skills, config.heads, config.rank, tasks],
                "metadata sizes \(listedSizes) vs tensor shapes \(inventory), T = \(tasks)")

        var generator = RandomGenerator(seed: 99)
        let backbone = VisionTransformer(config: vit, generator: &generator)
        let head = LinearHead(dim: dim, classes: shape("param.head.weight")[0], generator: &generator)
        model = SegmentationModel(backbone: backbone, head: head)
        backbone.setTrainable(false)
        MHR.inject(config, tasks: tasks, into: backbone, generator: &generator)
        report = try model.load(file) { name in name.hasPrefix("param.") ? String(name.dropFirst("param.".count)) : nil }
    }

    func parameter(_ name: String) -> Tensor? { model.namedParameters().first { $0.0 == name }?.1 }

    func trainingForward(taskIds: [Int]? = nil) throws -> (loss: Tensor, logits: Tensor, probed: [String: Tensor]) {
        var probed: [String: Tensor] = [:]
        let context = ForwardContext(taskIds: taskIds ?? self.taskIds)
        context.probe = { name, tensor in probed[name] = tensor.detached() }
        model.setTraining(true)
        let (loss, logitsOrNil) = try model.loss(images, labels: labels, context: context)
        let logits = logitsOrNil!.resizedBilinear(height: images.shape[2], width: images.shape[3]) // head stride → image size
        return (loss, logits, probed)
    }
}

@Suite("MHR parity with the PyTorch reference")
struct MHRParityTests {
    @Test func everyParameterLoadsByName() throws {
        let fixture = try MHRFixture()
        #expect(fixture.report.missing.isEmpty, "\(fixture.report)")
        let stray = fixture.report.unexpected.filter { $0.hasPrefix("param.") }
        #expect(stray.isEmpty, "\(stray)")
        #expect(fixture.taskIds.count == fixture.images.shape[0])
        #expect(Set(fixture.taskIds).count > 1, "the fixture's batch should mix tasks: \(fixture.taskIds)")
    }

    @Test func routingWeightsLogitsLossAndGradientsMatch() throws {
        let fixture = try MHRFixture()
        let model = fixture.model
        let gradNames = Set(fixture.file.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        #expect(Set(model.trainableParameters().map(\.0)) == gradNames)

        let (loss, logits, probed) = try fixture.trainingForward()
        var worst: [String: Double] = [:]
        func note(_ group: String, _ c: Closeness) { worst[group] = max(worst[group] ?? 0, c.relative) }
        let debugNames = fixture.file.names.filter { $0.hasPrefix("debug.") }
        for name in debugNames {
            let ours = try #require(probed[String(name.dropFirst("debug.".count))], "no activation probed for \(name)")
            let expected = try fixture.file.tensor(name)
            #expect(ours.shape == expected.shape, "\(name): \(ours.shape) vs \(expected.shape)")
            let result = compare(ours, expected, rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "\(name): \(result)")
            note("routing weights", result)
        }
        #expect(!debugNames.isEmpty)
        let logitResult = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(logitResult.passed, "logits: \(logitResult)")
        note("logits", logitResult)
        let expectedLoss = try fixture.file.tensor("output.loss").item
        #expect(abs(loss.item - expectedLoss) <= 1e-5, "loss \(loss.item) vs \(expectedLoss)")

        loss.backward()
        try fixture.file.expectGradientsMatch(model, worst: &worst) { name in
            name.hasPrefix("head.") ? "grad head" : "grad " + (name.split(separator: ".").last.map(String.init) ?? name)
        }
        print("parity mhr_lora: loss |Δ| \(abs(loss.item - expectedLoss)); max relative error per group:",
              worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    /// MHR-μ: the collapsed LoRA factors equal `mhr_mu.*` (PEFT layout), and the collapsed model equals
    /// the routed one under uniform routing (every Z entry equal).
    @Test func collapseMatchesMHRMuAndUniformRouting() throws {
        let fixture = try MHRFixture()
        let model = fixture.model
        for (_, _, adapter) in MHR.adapters(in: model.backbone) {
            let z = adapter.routing.logits
            for i in 0..<z.count { z.data[i] = 0.37 }
        }
        model.setTraining(false)
        let routed = Autograd.withNoGrad { model(fixture.images, context: ForwardContext(taskIds: fixture.taskIds)) }

        MHR.collapseToLoRA(model.backbone)
        #expect(MHR.adapters(in: model.backbone).isEmpty)
        var checked = 0, worst = 0.0
        for (name, tensor) in model.namedParameters() where name.hasSuffix(".lora_A") || name.hasSuffix(".lora_B") {
            let expected = try fixture.file.tensor("mhr_mu." + name)
            #expect(tensor.shape == expected.shape, "\(name): \(tensor.shape) vs mhr_mu \(expected.shape)")
            let result = compare(tensor, expected, rtol: 1e-6, atol: 1e-7)
            #expect(result.passed, "mhr_mu.\(name): \(result)")
            #expect(tensor.requiresGrad, "\(name) should be trainable after the collapse")
            worst = max(worst, result.relative)
            checked += 1
        }
        #expect(checked == fixture.file.names.filter { $0.hasPrefix("mhr_mu.") }.count)
        let collapsed = Autograd.withNoGrad { model(fixture.images, context: ForwardContext(taskIds: fixture.taskIds)) }
        let same = compare(collapsed, routed, rtol: 1e-5, atol: 1e-6)
        #expect(same.passed, "collapsed vs uniform-routed logits: \(same)")
        print("parity mhr_mu: \(checked) factors, max relative error \(String(format: "%.2e", worst)); uniform routing vs collapse rel \(String(format: "%.2e", same.relative))")
    }

    /// AdamW on the file's gradients against `adamw1.*` (one group, lr 1e-3, wd 0.05 as the file).
    @Test func adamWStepMatches() throws {
        let fixture = try MHRFixture()
        let (parameters, worst) = try fixture.file.expectAdamWStepMatches(fixture.model)
        #expect(Set(MHR.routingParameters(fixture.model).map(\.0)).isSubset(of: Set(parameters.map(\.0))))
        print("parity mhr_lora AdamW: max |Δ| \(String(format: "%.2e", worst))")
    }

    /// The checks can fail: a perturbed routing logit, a perturbed skill, or the wrong task ids move the
    /// outputs out of tolerance.
    @Test func wrongValuesAreCaught() throws {
        let reference = try MHRFixture()
        let expectedLogits = try reference.file.tensor("output.logits")
        let (_, clean, _) = try reference.trainingForward()
        #expect(compare(clean, expectedLogits, rtol: 1e-5, atol: 1e-6).passed)

        let fixture = try MHRFixture()
        let z = try #require(fixture.parameter("blocks.1.mlp.fc2.module_logits"))
        let width = z.shape[1], row = fixture.taskIds[0]
        for j in 0..<width { z.data[row * width + j] += j % 2 == 0 ? 0.5 : -0.5 }
        let (_, logits, _) = try fixture.trainingForward()
        #expect(!compare(logits, expectedLogits, rtol: 1e-5, atol: 1e-6).passed, "a moved routing logit went unnoticed")

        let skill = try MHRFixture()
        let a = try #require(skill.parameter("blocks.0.attn.qkv.lora_a"))
        let slab = a.shape[2] * a.shape[3]                     // skill 0 of head 0: [D_in/h, r]
        for i in 0..<slab { a.data[i] += 0.1 }
        let (_, skillLogits, skillProbed) = try skill.trainingForward()
        #expect(!compare(skillLogits, expectedLogits, rtol: 1e-5, atol: 1e-6).passed, "a moved skill went unnoticed")
        // The routing weights do not depend on A: that probe still matches.
        let debug = try #require(skillProbed["blocks.0.attn.qkv.routing_weights"])
        #expect(compare(debug, try skill.file.tensor("debug.blocks.0.attn.qkv.routing_weights"), rtol: 1e-5, atol: 1e-6).passed)

        let swapped = try MHRFixture()
        let (_, swappedLogits, swappedProbed) = try swapped.trainingForward(taskIds: Array(swapped.taskIds.reversed()))
        #expect(!compare(swappedLogits, expectedLogits, rtol: 1e-5, atol: 1e-6).passed, "routing ignored the task ids")
        let weights = try #require(swappedProbed["blocks.0.attn.qkv.routing_weights"])
        #expect(!compare(weights, try swapped.file.tensor("debug.blocks.0.attn.qkv.routing_weights"), rtol: 1e-5, atol: 1e-6).passed)
    }
}
