import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

@Suite("Model export and adapter checkpoints")
struct ExportTests {
    static let spec = ModelSpec(
        backbone: ViTConfig(embedDim: 32, depth: 2, heads: 2, patchSize: 8, imageHeight: 32, imageWidth: 48),
        classes: 3, adapter: AdapterSettings(method: .adaroute, adaroute: AdaRouteConfig(rank: 8, routerHidden: 8, kernelSizes: [3, 5])))

    func logits(_ model: SegmentationModel, seed: UInt64 = 4) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let images = Tensor.normal([2, 3, 32, 48], using: &rng)
        model.setTraining(false)
        return Autograd.withNoGrad { model(images, context: ForwardContext()) }
    }

    @Test func fullExportUsesTheFixtureNamingAndRoundTrips() throws {
        let model = Self.spec.build(seed: 1)
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        try ModelFiles.exportFull(model, spec: Self.spec, to: path)
        let file = try SafeTensorsFile(path: path)
        // The names a PyTorch user sees: those of shared/fixtures/adaroute_parity without the param./buffer. prefix.
        for name in ["patch_embed.proj.weight", "blocks.1.attn.qkv.weight", "norm.bias", "adapters.0.router.2.weight",
                     "adapters.1.mix.weight", "adapters.0.logit_scale", "expert.projA", "expert.conv5", "head.weight"] {
            #expect(file.entry(name) != nil, "missing \(name)")
        }
        let rebuilt = try ModelFiles.spec(of: file).build(seed: 2) // other seed: weights must come from the file
        let report = try rebuilt.load(file)
        #expect(report.missing.isEmpty && report.unexpected.isEmpty, "\(report)")
        #expect(logits(rebuilt).values == logits(model).values)
    }

    @Test func adapterCheckpointHoldsOnlyTheTrainedPart() throws {
        let model = Self.spec.build(seed: 1)
        let dir = Fixtures.temporaryDirectory()
        let bytes = try ModelFiles.saveAdapter(model, spec: Self.spec, to: dir.path)
        let file = try SafeTensorsFile(path: dir.appendingPathComponent(ModelFiles.adapterWeights).path)
        #expect(file.names.allSatisfy { $0.hasPrefix("adapters.") || $0.hasPrefix("expert.") || $0.hasPrefix("head.") })
        let trainable = model.parameterCount(trainableOnly: true)
        let buffers = model.namedBuffers().reduce(0) { $0 + $1.1.count }
        #expect(bytes > 4 * (trainable + buffers) && bytes < 4 * (trainable + buffers) + 65536)
        // Backbone from the "pretrained" full model, adapters from the checkpoint → the same model.
        let json = try String(contentsOf: dir.appendingPathComponent(ModelFiles.adapterConfig), encoding: .utf8)
        let spec = try ModelFiles.decodeSpec(json, source: "adapter_config.json")
        #expect(spec == Self.spec)
        let rebuilt = spec.build(seed: 9)
        let backbonePath = dir.appendingPathComponent("backbone.safetensors").path
        try model.backbone.save(to: backbonePath)
        _ = try rebuilt.backbone.load(SafeTensorsFile(path: backbonePath))
        let report = try rebuilt.load(file)
        #expect(report.unexpected.isEmpty)
        #expect(logits(rebuilt).values == logits(model).values)
    }

    @Test func malformedSpecIsAClearError() {
        #expect { try ModelFiles.decodeSpec("{\"classes\": 3}", source: "x/adapter_config.json") } throws: { error in
            "\(error)".contains("x/adapter_config.json")
        }
    }

    /// An adapter checkpoint carries the buffers of adapters living inside the backbone (PaCA's column
    /// indices) but no frozen backbone tensor; loaded into a fresh model built with another seed (other
    /// columns, other random backbone), it reproduces the trained model once the base weights match.
    @Test func pacaAdapterCheckpointCarriesTheColumnIndices() throws {
        var spec = Self.spec
        spec.adapter = AdapterSettings(method: .paca, paca: PaCAConfig(rank: 3, alpha: 6, targets: [.qkv, .fc2]))
        let model = spec.build(seed: 1)
        let names = Set(ModelFiles.adapterTensors(model).map(\.0))
        for block in 0..<2 {
            for layer in ["attn.qkv", "mlp.fc2"] {
                #expect(names.contains("blocks.\(block).\(layer).paca_idx") && names.contains("blocks.\(block).\(layer).paca_P"))
            }
        }
        #expect(!names.contains { $0.hasSuffix(".weight") && $0.hasPrefix("blocks.") }, "no frozen backbone weight")
        for (_, p) in model.trainableParameters() { for i in 0..<p.count { p.data[i] += 0.01 * Float(i % 7) } }
        let expected = logits(model)

        let dir = Fixtures.temporaryDirectory().path
        try ModelFiles.saveAdapter(model, spec: spec, to: dir)
        let other = spec.build(seed: 9)
        // The same frozen backbone as the trained model (as a pretrained file would give), other columns drawn.
        for ((_, a), (_, b)) in zip(model.backbone.namedParameters(), other.backbone.namedParameters()) where !a.requiresGrad {
            b.data.update(from: a.data, count: a.count)
        }
        _ = try other.load(try SafeTensorsFile(path: dir + "/adapter_model.safetensors"))
        #expect(compare(logits(other), expected, rtol: 0, atol: 1e-5).passed)
    }
}
