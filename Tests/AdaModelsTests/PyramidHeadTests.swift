// The necks (STA, Feature2Pyramid) and the UPerNet head beyond the parity fixture: structure, names,
// parameter counts against the spec's formulas, default taps, the auxiliary head, validation messages,
// and a few training steps that must lower the loss.
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Testing

@Suite("Pyramid necks and the UPerNet head")
struct PyramidHeadTests {
    /// A tiny ViT (width 16, 4 blocks, patch 16) at 64×96: a 4×6 grid.
    static func spec(neck: NeckKind, auxWeight: Float = 0, dropout: Float = 0, method: AdapterMethodKind = .linear) -> ModelSpec {
        let vit = ViTConfig(embedDim: 16, depth: 4, heads: 2, patchSize: 16, imageHeight: 64, imageWidth: 96)
        return ModelSpec(backbone: vit, classes: 3,
                         head: HeadSpec(kind: .upernet, channels: 8, dropout: dropout, auxWeight: auxWeight, auxChannels: 6),
                         neck: NeckSpec(kind: neck, detailChannels: 4, hidden: 12), adapter: AdapterSettings(method: method))
    }

    static func batch(seed: UInt64 = 3) -> (Tensor, [Int32]) {
        var rng = RandomGenerator(seed: seed)
        let images = Tensor.normal([2, 3, 64, 96], using: &rng)
        // A learnable labelling: class by image quadrant, with a few ignored pixels.
        let labels = (0..<(2 * 64 * 96)).map { i -> Int32 in
            let y = (i / 96) % 64, x = i % 96
            return (y * 96 + x) % 97 == 0 ? 255 : Int32((y < 32 ? 0 : 1) + (x < 48 ? 0 : 1))
        }
        return (images, labels)
    }

    @Test func feature2PyramidLevelsAndNames() throws {
        let model = Self.spec(neck: .feature2pyramid).build(seed: 1)
        let neck = try #require(model.neck)
        #expect(neck.tapBlocks == NeckSpec(kind: .feature2pyramid).resolvedTaps(depth: 4))
        #expect(neck.levelScales == [4, 2, 1, 0.5] && neck.levelChannels == [16, 16, 16, 16])
        var levels: [[Int]] = []
        let context = ForwardContext()
        context.probe = { name, t in if name.hasPrefix("neck.level") { levels.append(t.shape) } }
        let (images, _) = Self.batch()
        let logits = model(images, context: context)
        #expect(levels == [[2, 16, 24, 16], [2, 8, 12, 16], [2, 4, 6, 16], [2, 2, 3, 16]])
        #expect(logits.shape == [2, 3, 64, 96])
        let names = Set(model.namedParameters().map(\.0))
        for name in ["neck.upsample_4x.0.weight", "neck.upsample_4x.1.weight", "neck.upsample_4x.3.bias", "neck.upsample_2x.0.weight",
                     "head.lateral.2.0.weight", "head.fpn.2.1.bias", "head.ppm.3.0.weight", "head.fpn_bottleneck.0.weight",
                     "head.conv_seg.bias"] {
            #expect(names.contains(name), "missing \(name)")
        }
        #expect(model.namedParameters().first { $0.0 == "neck.upsample_4x.0.weight" }?.1.shape == [16, 16, 2, 2])
        #expect(model.namedParameters().first { $0.0 == "head.fpn_bottleneck.0.weight" }?.1.shape == [8, 32, 3, 3])
        #expect(model.namedBuffers().contains { $0.0 == "neck.upsample_4x.1.running_var" })
    }

    /// Spec sta.md §5: detail convs 27c + 234c², their BN 22c; fusion h·[(D+2c) + 2(D+4c)] + 6h.
    @Test func staParameterCountMatchesTheSpec() throws {
        let d = 384, c = 32, h = 224
        var generator = RandomGenerator(seed: 0)
        let neck = STANeck(dim: d, taps: [5, 8, 11], detailChannels: c, hidden: h, generator: &generator)
        #expect(neck.parameterCount() == 27 * c + 234 * c * c + 22 * c + h * ((d + 2 * c) + 2 * (d + 4 * c)) + 6 * h)
        #expect(neck.levelChannels == [h, h, h] && neck.levelScales == [2, 1, 0.5] && neck.gridLevel == 1)
        let patch14 = STANeck(dim: 8, patchSize: 14, taps: [0], detailChannels: 2, hidden: 4, generator: &generator)
        #expect(patch14.gridLevel == 1)
    }

    @Test func defaultTaps() {
        #expect(NeckSpec(kind: .sta).resolvedTaps(depth: 12) == [5, 8, 11])
        #expect(NeckSpec(kind: .feature2pyramid).resolvedTaps(depth: 12) == [3, 5, 7, 11])
        #expect(NeckSpec(kind: .feature2pyramid).resolvedTaps(depth: 24) == [7, 11, 15, 23])
        #expect(NeckSpec(kind: .sta).resolvedTaps(depth: 3) == [0, 1, 2])
        #expect(NeckSpec(kind: .sta, taps: [2]).resolvedTaps(depth: 12) == [2])
    }

    @Test func invalidCombinationsAreExplained() {
        let upernetAlone = HeadSpec(kind: .upernet).problem(neck: NeckSpec())
        #expect(upernetAlone?.contains("neck.kind") == true)
        #expect(HeadSpec(kind: .linear).problem(neck: NeckSpec(kind: .sta))?.contains("upernet") == true)
        #expect(NeckSpec(kind: .sta, taps: [1, 12, 3]).problem(depth: 12)?.contains("block 12 does not exist") == true)
        #expect(NeckSpec(kind: .feature2pyramid, taps: [1, 2]).problem(depth: 12)?.contains("4 taps") == true)
        #expect(HeadSpec(kind: .upernet, poolScales: [0, 2]).problem(neck: NeckSpec(kind: .sta))?.contains("pool_scales") == true)
        #expect(HeadSpec(kind: .upernet).problem(neck: NeckSpec(kind: .sta)) == nil)
    }

    /// One tap feeds all three STA levels; taps come after the blocks' adapters (here AdaRoute).
    @Test func staWithOneTapAndAnAdapter() throws {
        var spec = Self.spec(neck: .sta, method: .adaroute)
        spec.adapter.adaroute = AdaRouteConfig(rank: 4, routerHidden: 4, kernelSizes: [])
        spec.neck.taps = [2]
        let model = spec.build(seed: 5)
        var semantic: [Tensor] = []
        var adapterOut: Tensor?
        let context = ForwardContext()
        context.probe = { name, t in
            if name.hasPrefix("neck.semantic") { semantic.append(t.detached()) }
            if name == "adapter2.out" { adapterOut = t.detached() }
        }
        let (images, labels) = Self.batch()
        let (loss, _) = try model.loss(images, labels: labels, context: context)
        #expect(semantic.map(\.shape) == [[2, 8, 12, 16], [2, 4, 6, 16], [2, 2, 3, 16]])
        // Level 1 is the tap itself: LayerNorm(adapter-2 output patches), reshaped to the grid.
        let out = try #require(adapterOut)
        let patches = out.slice(axis: 1, range: 1..<25)
        let expected = model.backbone.norm(patches).reshaped([2, 4, 6, 16])
        #expect(compare(semantic[1], expected, rtol: 0, atol: 1e-6).passed)
        loss.backward()
        #expect(model.namedParameters().filter { $0.0.hasPrefix("adapters.2.") }.allSatisfy { $0.1.grad != nil })
    }

    /// The auxiliary head adds its weighted loss in training only, and trains.
    @Test func auxiliaryHeadLossIsAddedInTraining() throws {
        let model = Self.spec(neck: .sta, auxWeight: 0.4).build(seed: 2)
        let aux = try #require(model.auxHead)
        #expect(model.namedParameters().contains { $0.0 == "aux_head.conv.0.weight" })
        #expect(aux.conv.conv.inChannels == 12) // the STA stride-p level has `hidden` channels
        let (images, labels) = Self.batch()
        model.setTraining(false)
        let (evalLoss, evalLogits) = try model.loss(images, labels: labels, context: ForwardContext())
        #expect(abs(evalLoss.item - (try evalLogits!.resizedBilinear(height: images.shape[2], width: images.shape[3]).crossEntropy(labels: labels)).item) < 1e-6)
        model.setTraining(true)
        let (trainLoss, trainLogits) = try model.loss(images, labels: labels, context: ForwardContext())
        let main = try trainLogits!.detached().resizedBilinear(height: images.shape[2], width: images.shape[3]).crossEntropy(labels: labels).item
        #expect(trainLoss.item - main > 0.3, "aux term \(trainLoss.item - main) should be ≈ 0.4·ln 3")
        trainLoss.backward()
        #expect(aux.convSeg.weight.grad != nil)
    }

    /// A handful of AdamW steps on a fixed batch lowers the loss for both necks (everything is wired).
    @Test(arguments: [NeckKind.sta, .feature2pyramid])
    func trainingStepsLowerTheLoss(neck: NeckKind) throws {
        let model = Self.spec(neck: neck, dropout: 0.1).build(seed: 4)
        let (images, labels) = Self.batch()
        let optimizer = AdamW(groups: [ParameterGroup(parameters: model.trainableParameters(), weightDecay: 0)])
        var losses: [Float] = []
        let context = ForwardContext()
        for _ in 0..<20 {
            let (loss, _) = try model.loss(images, labels: labels, context: context)
            losses.append(loss.item)
            loss.backward()
            optimizer.step(learningRate: 1e-2)
            model.zeroGrad()
        }
        #expect(losses.last! < 0.7 * losses.first!, "\(losses)")
    }
}
