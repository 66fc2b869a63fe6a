// What every parity test does with a reference fixture (shared/fixtures/*/README.md): build the
// fixture's ViT from its tensor shapes and metadata, load `param.*`/`buffer.*`, compare every gradient,
// and replay one AdamW step on the file's own gradients. Sizes always come from the file.
import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Testing

extension SafeTensorsFile {
    /// A `__metadata__` value, or an error naming the file and the missing key.
    func metadataValue(_ key: String) throws -> String {
        guard let value = metadata[key] else {
            throw SafeTensorsError.malformedHeader(file: path, reason: "__metadata__ lacks '\(key)'")
        }
        return value
    }

    /// The fixture ViT: width, depth, patch, MLP ratio and qkv bias from the `param.*` shapes, the image
    /// size from `input.images`, the attention head count from the metadata key `headsKey` (tensor shapes
    /// do not determine it; the files name it `heads` or `num_heads`).
    func fixtureViTConfig(headsKey: String) throws -> ViTConfig {
        let shape = { (name: String) -> [Int] in self.entry(name)?.shape ?? [] }
        let dim = shape("param.pos_embed")[2]
        let depth = Set(names.compactMap { $0.hasPrefix("param.blocks.") ? $0.split(separator: ".")[2] : nil }).count
        guard let heads = Int(try metadataValue(headsKey)) else {
            throw SafeTensorsError.malformedHeader(file: path, reason: "\(headsKey) is not an integer")
        }
        let images = shape("input.images")
        var config = ViTConfig(embedDim: dim, depth: depth, heads: heads,
                               mlpRatio: Double(shape("param.blocks.0.mlp.fc1.weight")[0]) / Double(dim),
                               patchSize: shape("param.patch_embed.proj.weight")[2], imageHeight: images[2], imageWidth: images[3])
        config.qkvBias = entry("param.blocks.0.attn.qkv.bias") != nil
        return config
    }

    /// `input.labels` as the loss takes them (255 = ignore).
    func fixtureLabels() throws -> [Int32] { try integers("input.labels").values.map { Int32($0) } }

    /// Loads `param.*` and `buffer.*` into `model` by name.
    func loadParametersAndBuffers(into model: Module) throws -> LoadReport {
        try model.load(self) { name in
            for prefix in ["param.", "buffer."] where name.hasPrefix(prefix) { return String(name.dropFirst(prefix.count)) }
            return nil
        }
    }

    /// Compares every trainable parameter's gradient with `grad.<name>` (README tolerance) and records the
    /// worst relative error per `group(name)` into `worst`.
    func expectGradientsMatch(_ model: Module, worst: inout [String: Double], group: (String) -> String) throws {
        for (name, parameter) in model.trainableParameters() {
            let grad = try #require(parameter.grad, "no gradient for \(name)")
            let result = compare(grad, try tensor("grad." + name), rtol: 1e-4, atol: 1e-7)
            #expect(result.passed, "grad.\(name): \(result)")
            worst[group(name)] = max(worst[group(name)] ?? 0, result.relative)
        }
    }

    /// One AdamW step (lr 1e-3, weight decay 0.05, as every fixture) on the file's `grad.*` for each
    /// parameter that has an `adamw1.*` entry, compared with it (≤ 1e-6). Every `adamw1.*` entry not
    /// excused by `unused` must match a parameter. Returns the stepped parameters and the worst |Δ|.
    @discardableResult
    func expectAdamWStepMatches(_ model: Module, unused: (String) -> Bool = { _ in false }) throws
        -> (parameters: [(String, Tensor)], worst: Double) {
        var parameters: [(String, Tensor)] = []
        for (name, p) in model.namedParameters() where entry("adamw1." + name) != nil {
            p.grad = try tensor("grad." + name)
            parameters.append((name, p))
        }
        let expected = names.filter { $0.hasPrefix("adamw1.") && !unused($0) }.count
        #expect(!parameters.isEmpty && parameters.count == expected, "\(parameters.count) of \(expected) adamw1.* tensors matched a parameter")
        let optimizer = AdamW(groups: [ParameterGroup(parameters: parameters, weightDecay: 0.05)])
        optimizer.step(learningRate: 1e-3)
        var worst = 0.0
        for (name, p) in parameters {
            let result = compare(p, try tensor("adamw1." + name), rtol: 0, atol: 1e-6)
            #expect(result.passed, "adamw1.\(name): \(result)")
            worst = max(worst, result.maxAbsoluteError)
        }
        return (parameters, worst)
    }
}
