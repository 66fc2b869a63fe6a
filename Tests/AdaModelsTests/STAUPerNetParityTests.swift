// Parity of the STA neck + UPerNet head with the PyTorch reference (shared/fixtures/seeds_parity,
// `sta_upernet.safetensors`, README there). Every size — image, depth, widths, taps, detail width,
// hidden width, head channels, pool scales, classes — comes from the file, so a fixture regenerated with
// another seed or image size passes unchanged. Our maps are channels-last; the file's are NCHW.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// The fixture's ViT + STA + UPerNet, with `param.*` and `buffer.*` loaded.
struct STAUPerNetFixture {
    static let file = "seeds_parity/sta_upernet.safetensors"
    let file: SafeTensorsFile
    let model: SegmentationModel
    let images: Tensor
    let labels: [Int32]
    let patch: Int

    init() throws {
        let file = try Fixtures.open(Self.file)
        self.file = file
        let shape = { (name: String) -> [Int] in file.entry(name)?.shape ?? [] }
        let meta = file.metadataValue
        let ints = { (text: String) in text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }
        images = try file.tensor("input.images")
        labels = try file.fixtureLabels()
        let config = try file.fixtureViTConfig(headsKey: "num_heads")
        patch = config.patchSize
        // BatchNorm settings are ours by default; a regenerated file with others must fail loudly here.
        let eps = Float(try meta("bn_eps")), momentum = Float(try meta("bn_momentum"))
        #expect(eps == 1e-5 && momentum == 0.1, "fixture BatchNorm eps \(String(describing: eps)), momentum \(String(describing: momentum))")

        let tapNorm = try meta("tap_norm")
        let neck = NeckSpec(kind: .sta, taps: ints(try meta("taps")), tapNorm: tapNorm == "final_norm",
                            detailChannels: shape("param.neck.stem.0.weight")[0], hidden: shape("param.neck.fuse.0.0.weight")[0])
        let ppmCount = file.names.filter { $0.hasPrefix("param.head.ppm.") && $0.hasSuffix(".0.weight") }.count
        let poolScales = ints(try meta("pool_scales"))
        #expect(poolScales.count == ppmCount, "metadata pool_scales \(poolScales) vs \(ppmCount) PPM branches")
        // The reference has no dropout before the classifier (it would make the file non-deterministic).
        let head = HeadSpec(kind: .upernet, channels: shape("param.head.bottleneck.0.weight")[0], poolScales: poolScales, dropout: 0)
        let spec = ModelSpec(backbone: config, classes: shape("param.head.conv_seg.weight")[0], head: head, neck: neck,
                             adapter: AdapterSettings(method: .linear))
        model = spec.build(seed: 7)
        let report = try file.loadParametersAndBuffers(into: model)
        #expect(report.missing.isEmpty, "\(report)")
        let stray = report.unexpected.filter { $0.hasPrefix("param.") || $0.hasPrefix("buffer.") }
        #expect(stray.isEmpty, "\(stray)")
    }

    /// Our probe name and layout for a `debug.*` tensor of the file. Level names carry the stride
    /// (`level8`); the neck numbers its levels finest first (strides 8, 16, 32).
    func probe(for debugName: String) -> (name: String, channelsLast: Bool)? {
        let key = debugName.dropFirst("debug.".count)
        let fixed: [String: (String, Bool)] = ["ppm_out": ("head.ppm_out", true), "fpn_fused": ("head.fpn_fused", true),
                                               "logits_stride8": ("logits_lowres", false)]
        if let hit = fixed[String(key)] { return hit }
        for (prefix, ours) in [("detail", "neck.detail"), ("level", "neck.level"), ("sem", "neck.semantic")] where key.hasPrefix(prefix) {
            guard let stride = Int(key.dropFirst(prefix.count)), let neck = model.neck,
                  let level = neck.levelScales.firstIndex(of: Double(patch) / Double(stride)) else { return nil }
            return (ours + "\(level)", true)
        }
        return nil
    }
}

@Suite("STA + UPerNet parity with the PyTorch reference")
struct STAUPerNetParityTests {
    @Test func trainingForwardLossGradientsAndRunningStatsMatch() throws {
        let fixture = try STAUPerNetFixture()
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
        let debugNames = fixture.file.names.filter { $0.hasPrefix("debug.") }
        for name in debugNames {
            let (key, channelsLast) = try #require(fixture.probe(for: name), "no probe mapped for \(name)")
            let raw = try #require(probed[key], "no activation probed as \(key) for \(name)")
            let ours = channelsLast ? raw.permuted([0, 3, 1, 2]) : raw
            let expected = try fixture.file.tensor(name)
            #expect(ours.shape == expected.shape, "\(name): shape \(ours.shape) vs \(expected.shape)")
            let result = compare(ours, expected, rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "\(name): \(result)")
            note("debug", result)
        }
        #expect(debugNames.count >= 8)
        let logitResult = compare(logits, try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6)
        #expect(logitResult.passed, "logits: \(logitResult)")
        note("logits", logitResult)
        let expectedLoss = try fixture.file.tensor("output.loss").item
        #expect(abs(loss.item - expectedLoss) <= 1e-5, "loss \(loss.item) vs \(expectedLoss)")

        // Running statistics after one training forward (unbiased variance, momentum), counters included.
        var checkedBuffers = 0
        for (name, buffer) in model.namedBuffers() where fixture.file.entry("buffer_after." + name) != nil {
            let expected: [Float]
            if name.hasSuffix("num_batches_tracked") {
                expected = try fixture.file.integers("buffer_after." + name).values.map { Float($0) }
            } else {
                expected = try fixture.file.tensor("buffer_after." + name).values
            }
            let result = compare(buffer.values, expected, rtol: 1e-5, atol: 1e-6)
            #expect(result.passed, "buffer_after.\(name): \(result)")
            checkedBuffers += 1
        }
        #expect(checkedBuffers == fixture.file.names.filter { $0.hasPrefix("buffer_after.") }.count)

        loss.backward()
        try fixture.file.expectGradientsMatch(model, worst: &worst) { $0.hasPrefix("neck.") ? "grad neck" : "grad head" }
        print("parity sta_upernet: loss |Δ| \(abs(loss.item - expectedLoss)); max relative error per group:",
              worst.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.2e", $0.value))" }.joined(separator: ", "))
    }

    /// Eval mode normalises with the running statistics the training forward left (`buffer_after.*`).
    @Test func evalForwardMatches() throws {
        let fixture = try STAUPerNetFixture()
        let model = fixture.model
        _ = try model.load(fixture.file) { name in
            name.hasPrefix("buffer_after.") ? String(name.dropFirst("buffer_after.".count)) : nil
        }
        model.setTraining(false)
        let logits = Autograd.withNoGrad { model(fixture.images, context: ForwardContext()) }
        let result = compare(logits, try fixture.file.tensor("output.logits_eval"), rtol: 1e-5, atol: 1e-6)
        #expect(result.passed, "logits_eval: \(result)")
    }

    /// AdamW on the file's gradients against `adamw1.*`.
    @Test func adamWStepMatches() throws {
        let fixture = try STAUPerNetFixture()
        try fixture.file.expectAdamWStepMatches(fixture.model)
    }

    /// The parity check can fail: a perturbed fusion weight moves the logits out of tolerance.
    @Test func aWrongWeightIsCaught() throws {
        let fixture = try STAUPerNetFixture()
        let weight = try #require(fixture.model.namedParameters().first { $0.0 == "neck.fuse.1.0.weight" }?.1)
        weight.data[0] += 0.05
        fixture.model.setTraining(true)
        let (_, logits) = try fixture.model.loss(fixture.images, labels: fixture.labels, context: ForwardContext())
        #expect(!compare(logits!.resizedBilinear(height: fixture.images.shape[2], width: fixture.images.shape[3]), try fixture.file.tensor("output.logits"), rtol: 1e-5, atol: 1e-6).passed)
    }
}
