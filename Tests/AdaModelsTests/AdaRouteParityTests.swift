// Parity with the PyTorch reference (shared/fixtures/adaroute_parity, README there): every size comes
// from the file, so regenerated fixtures of other shapes pass unchanged.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// Builds the fixture's model from its tensor shapes and metadata and loads every `param.*`/`buffer.*`.
struct FixtureModel {
    let file: SafeTensorsFile
    let model: SegmentationModel
    let images: Tensor
    let labels: [Int32]

    init(_ relative: String) throws {
        let file = try Fixtures.open(relative)
        self.file = file
        let shape = { (name: String) in file.entry(name)!.shape }
        images = try file.tensor("input.images")
        labels = try file.fixtureLabels()
        let config = try file.fixtureViTConfig(headsKey: "heads")
        let dim = config.embedDim
        var generator = RandomGenerator(seed: 99)
        let backbone = VisionTransformer(config: config, generator: &generator)
        let head = LinearHead(dim: dim, classes: shape("param.head.weight")[0], generator: &generator)
        model = SegmentationModel(backbone: backbone, head: head)
        if file.entry("param.expert.projA") != nil {
            // Kernel ORDER matters (router chunk order, chaining, mixer outputs) and is not in the tensor
            // names: take it from the metadata the generator writes; names only give the set.
            let named = file.names.compactMap { name -> Int? in
                name.hasPrefix("param.expert.conv") ? Int(name.dropFirst("param.expert.conv".count)) : nil
            }
            let listed = (file.metadata["kernels"] ?? "").split(separator: ",").compactMap { Int($0) }
            let kernels = listed.isEmpty ? named.sorted() : listed
            precondition(Set(kernels) == Set(named), "metadata kernels \(listed) vs tensors \(named)")
            var ada = AdaRouteConfig(rank: shape("param.expert.projA")[1],
                                     routerHidden: shape("param.adapters.0.router.0.weight")[0], kernelSizes: kernels)
            ada.experts = shape("param.expert.projA")[0]
            AdapterInjector.apply(AdapterSettings(method: .adaroute, adaroute: ada), to: model, generator: &generator)
        }
    }

    /// With one kernel the reference (like the official ParaXAdapter) still registers the mixer
    /// (Linear r→1) and a zero-length conv_res_scale but never uses them; we do not build them.
    func unusedInReference(_ name: String) -> Bool {
        let singleKernel = (model.blockAdapters.first as? AdaRouteAdapter).map { $0.config.kernelSizes.count == 1 } ?? false
        return singleKernel && (name.hasSuffix(".mix.weight") || name.hasSuffix(".mix.bias") || name.hasSuffix(".conv_res_scale"))
    }

    /// Loads `param.*` and `buffer.*`; returns the load report.
    func load() throws -> LoadReport { try file.loadParametersAndBuffers(into: model) }
}

@Suite("AdaRoute parity with the PyTorch reference")
struct AdaRouteParityTests {
    static let files = ["adaroute_parity/adaroute_token.safetensors", "adaroute_parity/adaroute_conv35.safetensors"]

    @Test(arguments: files)
    func everyTensorLoadsByName(file: String) throws {
        let fixture = try FixtureModel(file)
        let report = try fixture.load()
        #expect(report.missing.isEmpty, "\(report)")
        let stray = report.unexpected.filter { ($0.hasPrefix("param.") || $0.hasPrefix("buffer.")) && !fixture.unusedInReference($0) }
        #expect(stray.isEmpty, "\(stray)")
    }

    @Test(arguments: files)
    func forwardLossAndGradientsMatch(file: String) throws {
        let fixture = try FixtureModel(file)
        _ = try fixture.load()
        let model = fixture.model
        // The token file has gradients for every parameter (a full fine-tuning check); the conv file for
        // the PEFT-trainable set only — which must be exactly our trainable set.
        let gradNames = Set(fixture.file.names.filter { $0.hasPrefix("grad.") }.map { String($0.dropFirst(5)) })
        if gradNames.count == model.namedParameters().count { model.setTrainable(true) }
        #expect(Set(model.trainableParameters().map(\.0)) == gradNames)

        var probed: [String: Tensor] = [:]
        let context = ForwardContext()
        context.probe = { name, tensor in probed[name] = tensor.detached() }
        model.setTraining(true)
        let (loss, logitsOrNil) = try model.loss(fixture.images, labels: fixture.labels, context: context)
        let logits = logitsOrNil!.resizedBilinear(height: fixture.images.shape[2], width: fixture.images.shape[3]) // head stride → image size

        var worst: [String: Double] = [:] // max |Δ|/max|ref| per tensor group, printed for the record
        func note(_ group: String, _ c: Closeness) { worst[group] = max(worst[group] ?? 0, c.relative) }
        var checkedDebug = 0
        for name in fixture.file.names where name.hasPrefix("debug.") {
            let key = String(name.dropFirst("debug.".count))
            let ours = try #require(probed[key], "no activation probed for \(name)")
            let result = compare(ours, try fixture.file.tensor(name), rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "\(name): \(result)")
            note("debug", result)
            checkedDebug += 1
        }
        #expect(checkedDebug >= 5)
        let logitResult = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(logitResult.passed, "logits: \(logitResult)")
        note("logits", logitResult)
        let expectedLoss = try fixture.file.tensor("output.loss").item
        #expect(abs(loss.item - expectedLoss) <= 1e-5, "loss \(loss.item) vs \(expectedLoss)")

        loss.backward()
        try fixture.file.expectGradientsMatch(model, worst: &worst) { name in
            name.hasPrefix("adapters.") || name.hasPrefix("expert.") ? "grad adapter" : name.hasPrefix("head.") ? "grad head" : "grad backbone"
        }
        print("parity \(file): loss |Δ| \(abs(loss.item - expectedLoss)); max relative error per group:",
              worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    /// The inference forward (no graph: routed projections through the packed kernel with packed weights kept,
    /// fused attention and GELU) gives the fixture's logits too.
    @Test(arguments: files)
    func inferenceForwardMatchesTheLogits(file: String) throws {
        let fixture = try FixtureModel(file)
        _ = try fixture.load()
        fixture.model.setTraining(false)
        let logits = Autograd.withNoGrad {
            PackedGEMM.reusingPackedWeights { fixture.model(fixture.images, context: ForwardContext()) }
        }.resizedBilinear(height: fixture.images.shape[2], width: fixture.images.shape[3])
        let result = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(result.passed, "logits: \(result)")
    }

    /// AdamW in isolation: the fixture's own gradients in, one step, compare with adamw1.* (≤ 1e-6).
    @Test(arguments: files)
    func adamWStepMatches(file: String) throws {
        let fixture = try FixtureModel(file)
        _ = try fixture.load()
        try fixture.file.expectAdamWStepMatches(fixture.model, unused: fixture.unusedInReference)
    }
}
