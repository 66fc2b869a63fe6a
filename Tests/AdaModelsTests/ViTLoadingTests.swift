import AdaIO
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// timm's vit_small_patch16_224 tensor names and shapes, written out independently of our model code.
func timmViTSmallEntries(includeClassifier: Bool) -> [(String, [Int])] {
    let d = 384, hidden = 1536
    var entries: [(String, [Int])] = [
        ("cls_token", [1, 1, d]), ("pos_embed", [1, 197, d]),
        ("patch_embed.proj.weight", [d, 3, 16, 16]), ("patch_embed.proj.bias", [d]),
        ("norm.weight", [d]), ("norm.bias", [d]),
    ]
    for i in 0..<12 {
        let b = "blocks.\(i)."
        entries += [
            (b + "norm1.weight", [d]), (b + "norm1.bias", [d]),
            (b + "attn.qkv.weight", [3 * d, d]), (b + "attn.qkv.bias", [3 * d]),
            (b + "attn.proj.weight", [d, d]), (b + "attn.proj.bias", [d]),
            (b + "norm2.weight", [d]), (b + "norm2.bias", [d]),
            (b + "mlp.fc1.weight", [hidden, d]), (b + "mlp.fc1.bias", [hidden]),
            (b + "mlp.fc2.weight", [d, hidden]), (b + "mlp.fc2.bias", [d]),
        ]
    }
    if includeClassifier { entries += [("head.weight", [1000, d]), ("head.bias", [1000])] }
    return entries
}

func writeRandomCheckpoint(_ entries: [(String, [Int])], to path: String, seed: UInt64 = 5) throws {
    var rng = RandomGenerator(seed: seed)
    var writer = SafeTensorsWriter(metadata: ["format": "pt"])
    for (name, shape) in entries { writer.add(name, Tensor.normal(shape, std: 0.02, using: &rng)) }
    try writer.write(to: path)
}

@Suite("ViT pretrained weights")
struct ViTLoadingTests {
    @Test func timmViTSmallLoadsWithNothingMissingOrUnexpected() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        try writeRandomCheckpoint(timmViTSmallEntries(includeClassifier: false), to: path)
        var config = try #require(ViTConfig.preset("vit_small_patch16"))
        config.imageHeight = 224; config.imageWidth = 224
        var rng = RandomGenerator(seed: 1)
        let vit = VisionTransformer(config: config, generator: &rng)
        let report = try vit.loadPretrained(path: path)
        #expect(report.missing.isEmpty && report.unexpected.isEmpty, "\(report)")
        let file = try SafeTensorsFile(path: path)
        #expect(vit.blocks[7].mlp.fc2.weight.values == (try file.tensor("blocks.7.mlp.fc2.weight")).values)
        #expect(vit.posEmbed.values == (try file.tensor("pos_embed")).values)
    }

    @Test func imageNetClassifierIsReportedAsUnexpected() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        try writeRandomCheckpoint(timmViTSmallEntries(includeClassifier: true), to: path)
        var rng = RandomGenerator(seed: 1)
        let vit = VisionTransformer(config: ViTConfig.preset("vit_small_patch16")!, generator: &rng)
        let report = try vit.loadPretrained(path: path)
        #expect(report.unexpected.sorted() == ["head.bias", "head.weight"])
        #expect(report.missing.isEmpty)
    }

    @Test func missingTensorsAreReported() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        try writeRandomCheckpoint(timmViTSmallEntries(includeClassifier: false).filter { !$0.0.hasPrefix("blocks.11.") }, to: path)
        var rng = RandomGenerator(seed: 1)
        let vit = VisionTransformer(config: ViTConfig.preset("vit_small_patch16")!, generator: &rng)
        let report = try vit.loadPretrained(path: path)
        #expect(report.missing.count == 12 && report.missing.allSatisfy { $0.hasPrefix("blocks.11.") })
    }

    @Test func shapeMismatchNamesTheTensor() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        var entries = timmViTSmallEntries(includeClassifier: false)
        entries[entries.firstIndex { $0.0 == "blocks.3.mlp.fc1.weight" }!].1 = [1000, 384]
        try writeRandomCheckpoint(entries, to: path)
        var rng = RandomGenerator(seed: 1)
        let vit = VisionTransformer(config: ViTConfig.preset("vit_small_patch16")!, generator: &rng)
        #expect { try vit.loadPretrained(path: path) } throws: { error in
            "\(error)".contains("blocks.3.mlp.fc1.weight") && "\(error)".contains("[1000, 384]") && "\(error)".contains(path)
        }
    }

    /// A 224² checkpoint (14×14 grid) into a 256² model (16×16): pos_embed is resampled, CLS kept.
    @Test func positionEmbeddingIsResampledToTheModelGrid() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("model.safetensors").path
        try writeRandomCheckpoint(timmViTSmallEntries(includeClassifier: false), to: path)
        var config = ViTConfig.preset("vit_small_patch16")!
        config.imageHeight = 256; config.imageWidth = 256
        var rng = RandomGenerator(seed: 1)
        let vit = VisionTransformer(config: config, generator: &rng)
        let report = try vit.loadPretrained(path: path)
        #expect(report.missing.isEmpty && !report.notes.isEmpty)
        #expect(vit.posEmbed.shape == [1, 257, 384])
        let source = try SafeTensorsFile(path: path).tensor("pos_embed")
        #expect(Array(vit.posEmbed.values[0..<384]) == Array(source.values[0..<384])) // CLS row copied
    }

    @Test func resamplingKeepsConstantsAndIdentity() {
        let constant = Tensor.full([1, 1 + 9, 2], 0.5)
        let up = PositionEmbedding.resample(constant, from: (3, 3), to: (5, 4))
        #expect(up.shape == [1, 21, 2] && up.values.allSatisfy { abs($0 - 0.5) < 1e-6 })
        let down = PositionEmbedding.resample(up, from: (5, 4), to: (2, 3))
        #expect(down.values.allSatisfy { abs($0 - 0.5) < 1e-6 })
        var rng = RandomGenerator(seed: 3)
        let random = Tensor.normal([1, 1 + 12, 3], using: &rng)
        let same = PositionEmbedding.resample(random, from: (3, 4), to: (3, 4))
        #expect(compare(same, random, rtol: 0, atol: 1e-6).passed)
    }

    @Test func presetsMatchTimm() {
        #expect(ViTConfig.preset("vit_tiny_patch16").map { [$0.embedDim, $0.depth, $0.heads] } == [192, 12, 3])
        #expect(ViTConfig.preset("vit_small_patch16").map { [$0.embedDim, $0.depth, $0.heads] } == [384, 12, 6])
        #expect(ViTConfig.preset("vit_base_patch14").map { [$0.embedDim, $0.patchSize, $0.imageHeight] } == [768, 14, 196])
        #expect(ViTConfig.preset("vit_large_patch16").map { [$0.embedDim, $0.depth, $0.heads] } == [1024, 24, 16])
        #expect(ViTConfig.preset("vit_huge_patch16") == nil)
        // ViT-S/16 backbone without a classifier: 21,665,664 parameters (timm's 22.05 M minus head 385,000).
        var rng = RandomGenerator(seed: 1)
        #expect(VisionTransformer(config: ViTConfig.preset("vit_small_patch16")!, generator: &rng).parameterCount() == 21_665_664)
    }
}
