// Parity of PaCA with the PyTorch reference (shared/fixtures/seeds_parity/paca.safetensors, README there):
// logits, loss, every gradient, one AdamW step and the merged weights after it. Every size — image, depth,
// width, heads, MLP ratio, patch, classes, columns r, alpha, targets — comes from the file, so a fixture
// regenerated with another seed or image size passes unchanged.
//
// Legend: B batch, K in features, N out features of an adapted linear, r columns, s = alpha/r.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// The fixture's ViT + PaCA + linear head, built from shapes and metadata, with `param.*`/`buffer.*` loaded.
struct PaCAFixture {
    static let file = "seeds_parity/paca.safetensors"
    let file: SafeTensorsFile
    let model: SegmentationModel
    let config: PaCAConfig
    let images: Tensor
    let labels: [Int32]

    init() throws {
        let file = try Fixtures.open(Self.file)
        self.file = file
        let shape = { (name: String) -> [Int] in file.entry(name)?.shape ?? [] }
        let meta = file.metadataValue
        images = try file.tensor("input.images")
        labels = try file.fixtureLabels()
        let vit = try file.fixtureViTConfig(headsKey: "num_heads")
        let dim = vit.embedDim

        // Targets: metadata names timm paths (attn.qkv, …); the tensors must agree with them.
        var targets: [LoRATarget] = []
        for path in try meta("targets").split(separator: ",") {
            guard let short = path.split(separator: ".").last, let target = LoRATarget(rawValue: String(short)) else {
                throw SafeTensorsError.malformedHeader(file: file.path, reason: "unknown PaCA target '\(path)'")
            }
            targets.append(target)
        }
        let adapted = Set(file.names.filter { $0.hasPrefix("param.") && $0.hasSuffix(".paca_P") }
            .compactMap { $0.split(separator: ".").dropLast().last.flatMap { LoRATarget(rawValue: String($0)) } })
        #expect(adapted == Set(targets), "metadata targets \(targets) vs paca_P tensors for \(adapted)")
        let firstP = try #require(file.names.first { $0.hasPrefix("param.") && $0.hasSuffix(".paca_P") })
        let rank = shape(firstP)[1]
        guard let alpha = Float(try meta("paca_alpha")) else {
            throw SafeTensorsError.malformedHeader(file: file.path, reason: "paca_alpha is not a number")
        }
        config = PaCAConfig(rank: rank, alpha: alpha, targets: targets)
        if let scale = file.metadata["scale"].flatMap(Float.init) {
            #expect(abs(scale - config.scaling) <= 1e-6 * scale, "metadata scale \(scale) vs alpha/r = \(config.scaling)")
        }
        if let r = file.metadata["rank"].flatMap(Int.init) { #expect(r == rank, "metadata rank \(r) vs paca_P columns \(rank)") }

        var generator = RandomGenerator(seed: 99)
        let backbone = VisionTransformer(config: vit, generator: &generator)
        let head = LinearHead(dim: dim, classes: shape("param.head.weight")[0], generator: &generator)
        model = SegmentationModel(backbone: backbone, head: head)
        // What AdapterInjector does for a method: frozen backbone, the method's modules, trainable head.
        backbone.setTrainable(false)
        PaCA.inject(config, into: backbone, generator: &generator)
        model.head.setTrainable(true)
    }

    func load() throws -> LoadReport { try file.loadParametersAndBuffers(into: model) }

    /// A fixture with everything loaded and checked.
    static func loaded() throws -> PaCAFixture {
        let fixture = try PaCAFixture()
        let report = try fixture.load()
        #expect(report.missing.isEmpty, "\(report)")
        let stray = report.unexpected.filter { $0.hasPrefix("param.") || $0.hasPrefix("buffer.") }
        #expect(stray.isEmpty, "\(stray)")
        return fixture
    }
}

@Suite("PaCA parity with the PyTorch reference")
struct PaCAParityTests {
    @Test func everyTensorLoadsByNameAndIndicesAreTheFiles() throws {
        let fixture = try PaCAFixture.loaded()
        let adapters = PaCA.adapters(in: fixture.model)
        #expect(adapters.count == fixture.model.backbone.blocks.count * fixture.config.targets.count)
        for (path, linear, adapter) in adapters {
            let expected = try fixture.file.integers("buffer.\(path).paca_idx").values
            #expect(adapter.columns == expected.map { Int($0) }, "\(path)")
            #expect(adapter.rank == fixture.config.rank && adapter.scaling == fixture.config.scaling)
            #expect(!linear.weight.requiresGrad && linear.bias?.requiresGrad != true)
        }
    }

    @Test func forwardLossAndGradientsMatch() throws {
        let fixture = try PaCAFixture.loaded()
        let model = fixture.model
        let gradNames = Set(fixture.file.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        #expect(Set(model.trainableParameters().map(\.0)) == gradNames)

        var probed: [String: Tensor] = [:]
        let context = ForwardContext()
        context.probe = { name, tensor in probed[name] = tensor.detached() }
        model.setTraining(true)
        let (loss, logitsOrNil) = try model.loss(fixture.images, labels: fixture.labels, context: context)
        let logits = logitsOrNil!.resizedBilinear(height: fixture.images.shape[2], width: fixture.images.shape[3]) // head stride → image size

        var worst: [String: Double] = [:]
        func note(_ group: String, _ c: Closeness) { worst[group] = max(worst[group] ?? 0, c.relative) }
        for name in fixture.file.names where name.hasPrefix("debug.") {
            let ours = try #require(probed[String(name.dropFirst("debug.".count))], "no activation probed for \(name)")
            let result = compare(ours, try fixture.file.tensor(name), rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "\(name): \(result)")
            note("debug", result)
        }
        // The forward ran on W_eff: every adapted weight now holds s·P in its columns.
        for (path, linear, adapter) in PaCA.adapters(in: model) {
            #expect(Tensor.partialColumnsInSync(linear.weight, columns: adapter.columns, partial: adapter.partial, scale: adapter.scaling),
                    "\(path) not synced")
        }
        let logitResult = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(logitResult.passed, "logits: \(logitResult)")
        note("logits", logitResult)
        let expectedLoss = try fixture.file.tensor("output.loss").item
        #expect(abs(loss.item - expectedLoss) <= 1e-5, "loss \(loss.item) vs \(expectedLoss)")

        loss.backward()
        try fixture.file.expectGradientsMatch(model, worst: &worst) { $0.hasSuffix(".paca_P") ? "grad paca_P" : "grad head" }
        for (name, parameter) in model.namedParameters() where !parameter.requiresGrad {
            #expect(parameter.grad == nil, "frozen \(name) got a gradient")
        }
        print("parity paca: loss |Δ| \(abs(loss.item - expectedLoss)); max relative error per group:",
              worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    /// Evaluation mode syncs too (the reference's eval artefact is not copied): same logits.
    @Test func evalForwardMatches() throws {
        let fixture = try PaCAFixture.loaded()
        fixture.model.setTraining(false)
        let logits = Autograd.withNoGrad { fixture.model(fixture.images, context: ForwardContext()) }
        let result = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(result.passed, "eval logits: \(result)")
    }

    /// AdamW on the file's gradients against `adamw1.*`, then the merged weights against `merged.*`.
    @Test func adamWStepAndMergedWeightsMatch() throws {
        let fixture = try PaCAFixture.loaded()
        let model = fixture.model
        let (parameters, worstStep) = try fixture.file.expectAdamWStepMatches(model)
        #expect(Set(parameters.map(\.0)) == Set(model.trainableParameters().map(\.0)))

        let merged = PaCA.merge(model.backbone)
        let mergedNames = fixture.file.names.filter { $0.hasPrefix("merged.") }
        #expect(merged == mergedNames.count && merged > 0)
        #expect(PaCA.adapters(in: model).isEmpty)
        #expect(!model.stateDict().contains { $0.0.contains("paca_") })
        let weights = Dictionary(uniqueKeysWithValues: model.namedParameters())
        var worstMerged = 0.0
        for name in mergedNames {
            let key = String(name.dropFirst("merged.".count))
            let weight = try #require(weights[key], "no parameter \(key)")
            // The merged columns are s·P: P's step tolerance, times s.
            let result = compare(weight, try fixture.file.tensor(name), rtol: 0, atol: 1e-6 * Double(max(1, fixture.config.scaling)))
            #expect(result.passed, "\(name): \(result)")
            worstMerged = max(worstMerged, result.maxAbsoluteError)
        }
        print("parity paca: AdamW max |Δ| \(worstStep); merged weights max |Δ| \(worstMerged)")
    }

    /// The comparisons can fail: a perturbed P, a forward on the unsynced base weight, or one wrong column
    /// index each move the logits out of tolerance.
    @Test(arguments: ["perturbed P", "base weight", "wrong column"])
    func aWrongValueIsCaught(wrong: String) throws {
        let fixture = try PaCAFixture.loaded()
        let (_, _, adapter) = try #require(PaCA.adapters(in: fixture.model).first { $0.path == "blocks.1.mlp.fc1" })
        switch wrong {
        case "perturbed P": adapter.partial.data[0] += 0.05
        case "base weight": adapter.isEnabled = false
        default:
            let columns = adapter.columns
            let unused = try #require((0..<fixture.model.backbone.blocks[1].mlp.fc1.inFeatures).first { !columns.contains($0) })
            adapter.indexBuffer.data[0] = Float(unused)
        }
        fixture.model.setTraining(true)
        let (_, logits) = try fixture.model.loss(fixture.images, labels: fixture.labels, context: ForwardContext())
        let result = compare(logits!.resizedBilinear(height: fixture.images.shape[2], width: fixture.images.shape[3]), try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(!result.passed, "\(wrong): \(result)")
    }
}
