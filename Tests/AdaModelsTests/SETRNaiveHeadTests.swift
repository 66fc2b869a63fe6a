// SETR-Naive head and the BatchNorm layer it uses. Tiny sizes: D 8, c 6, K 3, grid 3×5, B 2.
import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Testing

@Suite("BatchNorm layer")
struct BatchNormLayerTests {
    @Test func namesAndInitialValues() {
        let bn = BatchNorm(4)
        #expect(bn.namedParameters(prefix: "bn.").map(\.0) == ["bn.weight", "bn.bias"])
        #expect(bn.namedBuffers(prefix: "bn.").map(\.0) == ["bn.running_mean", "bn.running_var", "bn.num_batches_tracked"])
        #expect(bn.weight!.values == [1, 1, 1, 1] && bn.bias!.values == [0, 0, 0, 0])
        #expect(bn.runningMean.values == [0, 0, 0, 0] && bn.runningVar.values == [1, 1, 1, 1])
        #expect(bn.numBatchesTracked.shape == [1] && bn.numBatchesTracked.item == 0)
        #expect(bn.weight!.requiresGrad && bn.bias!.requiresGrad && !bn.runningMean.requiresGrad)
        #expect(BatchNorm(4, affine: false).namedParameters().isEmpty)
    }

    @Test func countsTrainingForwardsOnlyAndUsesTheMode() {
        let bn = BatchNorm(2)
        let x = Tensor(shape: [3, 2], values: [1, 0, 2, 0, 6, 3])
        let train = bn(x)
        _ = bn(x)
        #expect(bn.numBatchesTracked.item == 2)
        // Two updates with momentum 0.1 from (0, 0): mean 0.19·(3, 1).
        #expect(compare(bn.runningMean.values, [0.57, 0.19], rtol: 0, atol: 1e-6).passed, "\(bn.runningMean.values)")
        bn.setTraining(false)
        let frozenMean = bn.runningMean.values
        let eval = bn(x)
        #expect(bn.numBatchesTracked.item == 2 && bn.runningMean.values == frozenMean)
        // Eval normalises with the running statistics, training with the batch's.
        let expected = (0..<6).map { i in (x.data[i] - bn.runningMean.data[i % 2]) / (bn.runningVar.data[i % 2] + 1e-5).squareRoot() }
        #expect(compare(eval.values, expected, rtol: 0, atol: 1e-6).passed)
        #expect(compare(train.values, eval.values, rtol: 0, atol: 0.1).passed == false)
    }

    @Test func momentumNilIsTheCumulativeAverage() {
        // PyTorch momentum=None: factor 1/num_batches_tracked, so the running mean is the plain average.
        let bn = BatchNorm(1, momentum: nil)
        _ = bn(Tensor(shape: [2, 1], values: [1, 3]))   // mean 2, unbiased var 2
        _ = bn(Tensor(shape: [2, 1], values: [4, 8]))   // mean 6, unbiased var 8
        _ = bn(Tensor(shape: [2, 1], values: [0, 2]))   // mean 1, unbiased var 2
        #expect(compare(bn.runningMean.values, [3], rtol: 0, atol: 1e-6).passed, "\(bn.runningMean.values)")
        #expect(compare(bn.runningVar.values, [4], rtol: 0, atol: 1e-6).passed, "\(bn.runningVar.values)")
    }
}

/// Records the HeadInput a SegmentationModel hands its head (see `SETRNaiveHeadTests.headInput`).
final class RecordingHead: Module, SegmentationHead {
    var input: HeadInput?
    var classes: Int { 1 }
    var tapBlocks: [Int] { [] }
    func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor {
        self.input = input
        return Tensor.zeros([input.tokens.shape[0], 1, input.gridHeight, input.gridWidth])
    }
}

@Suite("SETR-Naive head")
struct SETRNaiveHeadTests {
    static let batch = 2, dim = 8, channels = 6, classes = 3, gridH = 3, gridW = 5

    /// A head with every parameter moved away from its init (LN 1/0, BN 1/0, zero bias would hide
    /// mistakes), and random tokens.
    static func make(seed: UInt64) -> (SETRNaiveHead, HeadInput) {
        var rng = RandomGenerator(seed: seed)
        let head = SETRNaiveHead(dim: dim, classes: classes, channels: channels, generator: &rng)
        for (_, p) in head.namedParameters() {
            p.assign(Tensor.normal(p.shape, mean: p.shape.count == 1 ? 0.5 : 0, std: 0.7, using: &rng))
        }
        // BN scales of both signs but none near 0 (a tiny scale squeezes a channel onto the ReLU kink).
        head.bn.weight!.assign(Tensor([0.8, -1.1, 1.3, 0.7, -0.9, 1.2]))
        let tokens = Tensor.normal([batch, gridH * gridW, dim], mean: 0.3, std: 1.5, using: &rng)
        return (head, headInput(tokens, gridHeight: gridH, gridWidth: gridW))
    }

    /// HeadInput's memberwise initializer is internal to AdaModels (and release builds cannot use
    /// @testable), so take one from a SegmentationModel through a head that records its input, then
    /// overwrite its tokens [B, N, D] with the test's values.
    static func headInput(_ values: Tensor, gridHeight h: Int, gridWidth w: Int) -> HeadInput {
        let b = values.shape[0], d = values.shape[2]
        var rng = RandomGenerator(seed: 0)
        let config = ViTConfig(embedDim: d, depth: 1, heads: 1, patchSize: 1, imageHeight: h, imageWidth: w)
        let recorder = RecordingHead()
        let model = SegmentationModel(backbone: VisionTransformer(config: config, generator: &rng), head: recorder)
        _ = Autograd.withNoGrad { model.headLogits(Tensor.zeros([b, 3, h, w]), context: ForwardContext()) }
        let input = recorder.input!
        precondition(input.tokens.shape == values.shape && !input.tokens.isRecorded)
        input.tokens.assign(values)
        return input
    }

    static func standardDeviation(_ t: Tensor) -> Double {
        let v = t.values.map(Double.init), m = v.reduce(0, +) / Double(v.count)
        return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count)).squareRoot()
    }

    @Test func namesShapesAndInit() {
        var rng = RandomGenerator(seed: 1)
        let head = SETRNaiveHead(dim: 64, classes: 5, generator: &rng)
        #expect(head.namedParameters(prefix: "head.").map(\.0)
                == ["head.norm.weight", "head.norm.bias", "head.conv.weight", "head.bn.weight", "head.bn.bias",
                    "head.cls.weight", "head.cls.bias"])
        #expect(head.namedBuffers(prefix: "head.").map(\.0)
                == ["head.bn.running_mean", "head.bn.running_var", "head.bn.num_batches_tracked"])
        #expect(head.channels == 256 && head.conv.weight.shape == [256, 64] && head.conv.bias == nil)
        #expect(head.cls.weight.shape == [5, 256] && head.cls.bias!.values == [Float](repeating: 0, count: 5))
        // conv: kaiming-normal fan_out, std √(2/256) ≈ 0.088; classifier std 0.01.
        let convStd = Self.standardDeviation(head.conv.weight), clsStd = Self.standardDeviation(head.cls.weight)
        #expect(Swift.abs(convStd - (2.0 / 256).squareRoot()) < 0.005, "\(convStd)")
        #expect(Swift.abs(clsStd - 0.01) < 0.001, "\(clsStd)")
    }

    @Test func outputShapeForA3x5Grid() {
        let (head, input) = Self.make(seed: 2)
        let logits = head(input, context: ForwardContext())
        #expect(logits.shape == [Self.batch, Self.classes, 12, 20])
        #expect(logits.values.allSatisfy { $0.isFinite })
    }

    /// The head classifies on the token grid and then upsamples; mmseg upsamples the c channels and then
    /// classifies. They must agree (the two linear maps commute) — this checks the reordering.
    @Test func matchesUpsampleThenClassify() {
        let (head, input) = Self.make(seed: 3)
        let ours = head(input, context: ForwardContext())
        let (b, h, w, c) = (Self.batch, Self.gridH, Self.gridW, Self.channels)
        let features = head.bn(input.tokens.layerNorm(weight: head.norm.weight, bias: head.norm.bias, eps: 1e-6)
            .linear(head.conv.weight)).relu()                                          // [B, N, c]
        let upsampled = features.transposed(1, 2).reshaped([b, c, h, w])
            .resizedBilinear(height: 4 * h, width: 4 * w)                              // [B, c, 4h, 4w]
        let reference = upsampled.permuted([0, 2, 3, 1]).linear(head.cls.weight, bias: head.cls.bias!)
            .permuted([0, 3, 1, 2])                                                    // [B, K, 4h, 4w]
        #expect(reference.shape == ours.shape)
        #expect(compare(ours, reference, rtol: 1e-5, atol: 1e-5).passed, "\(compare(ours, reference, rtol: 1e-5, atol: 1e-5))")
    }

    /// The values entering the ReLU [B·N, c] (the BN buffers are restored afterwards).
    static func preReLU(_ head: SETRNaiveHead, _ input: HeadInput) -> Tensor {
        let saved = (head.bn.runningMean.copy(), head.bn.runningVar.copy(), head.bn.numBatchesTracked.copy())
        defer {
            head.bn.runningMean.assign(saved.0); head.bn.runningVar.assign(saved.1); head.bn.numBatchesTracked.assign(saved.2)
        }
        return Autograd.withNoGrad { head.bn(head.conv.base(head.norm(input.tokens))) }
    }

    /// Sets each BN bias so the ReLU kink falls in the widest gap between that channel's central
    /// values (the middle half of the sorted ones): every channel keeps both active and dead pixels,
    /// and no value sits near the kink. Returns the smallest |ReLU input| afterwards.
    static func placeReLUKinksInGaps(_ head: SETRNaiveHead, _ input: HeadInput) -> Float {
        let c = head.channels
        head.bn.bias!.assign(Tensor.zeros([c]))
        let pre = preReLU(head, input)
        let rows = pre.count / c
        var bias = [Float](repeating: 0, count: c)
        for j in 0..<c {
            let sorted = (0..<rows).map { pre.data[$0 * c + j] }.sorted()
            var best = rows / 4
            for i in (rows / 4)..<(3 * rows / 4) where sorted[i + 1] - sorted[i] > sorted[best + 1] - sorted[best] {
                best = i
            }
            bias[j] = -(sorted[best] + sorted[best + 1]) / 2
        }
        head.bn.bias!.assign(Tensor(bias))
        return preReLU(head, input).values.map { Swift.abs($0) }.min()!
    }

    /// Finite differences (step 1e-2) through LN → linear → BN → ReLU → linear → transpose → upsample,
    /// for the tokens and every parameter, in both modes. The BN biases put the ReLU kink in a gap of
    /// each channel's values, at least 0.05 from all of them (asserted): a step moves a ReLU input
    /// by about 0.01·|x̂| ≲ 0.03, so no difference crosses the kink, while each channel still has
    /// active and dead pixels.
    @Test(arguments: [true, false])
    func gradientsOfTheWholeHead(training: Bool) {
        let (head, input) = Self.make(seed: 4)
        var rng = RandomGenerator(seed: 5)
        head.bn.runningMean.assign(Tensor.normal([Self.channels], std: 0.5, using: &rng))
        head.bn.runningVar.assign(Tensor.uniform([Self.channels], low: 1, high: 4, using: &rng))
        head.setTraining(training)
        let margin = Self.placeReLUKinksInGaps(head, input)
        #expect(margin > 0.05, "a ReLU input is \(margin) from the kink")
        let pre = Self.preReLU(head, input)
        let active = pre.values.filter { $0 > 0 }.count
        #expect(active > pre.count / 4 && active < 3 * pre.count / 4, "\(active) of \(pre.count) active")
        let tokens = input.tokens
        tokens.requiresGrad = true
        let parameters = head.namedParameters().map(\.1)
        let report = GradCheck.run([tokens] + parameters) { _ in head(input, context: ForwardContext()) }
        #expect(report.passed, "training \(training): \(report)")
    }

    @Test func trainingAndEvalModesDiffer() {
        let (head, input) = Self.make(seed: 6)
        let context = ForwardContext()
        let train = head(input, context: context)
        #expect(head.bn.numBatchesTracked.item == 1)
        head.setTraining(false)
        #expect(!head.bn.isTraining)
        let eval = head(input, context: context)
        #expect(head.bn.numBatchesTracked.item == 1)
        #expect(compare(train, eval, rtol: 0, atol: 1e-3).passed == false)
        // Eval treats each sample on its own; training mixes the batch through the BN statistics.
        let first = Self.headInput(input.tokens.slice(axis: 0, range: 0..<1), gridHeight: Self.gridH,
                                   gridWidth: Self.gridW)
        let evalAlone = head(first, context: context)
        #expect(compare(evalAlone, eval.slice(axis: 0, range: 0..<1), rtol: 0, atol: 1e-6).passed)
        head.setTraining(true)
        let trainAlone = head(first, context: context)
        #expect(compare(trainAlone, train.slice(axis: 0, range: 0..<1), rtol: 0, atol: 1e-3).passed == false)
    }

    /// A tiny ViT (patch 8, 24×40 images → 3×5 grid) with the SETR head: builds, runs, trains one step.
    @Test func plugsIntoSegmentationModel() throws {
        var rng = RandomGenerator(seed: 7)
        let config = ViTConfig(embedDim: 16, depth: 1, heads: 2, patchSize: 8, imageHeight: 24, imageWidth: 40)
        let backbone = VisionTransformer(config: config, generator: &rng)
        let model = SegmentationModel(backbone: backbone,
                                      head: SETRNaiveHead(dim: 16, classes: 4, channels: 8, generator: &rng))
        let names = model.namedParameters().map(\.0) + model.namedBuffers().map(\.0)
        for name in ["head.norm.weight", "head.conv.weight", "head.bn.bias", "head.bn.running_var",
                     "head.bn.num_batches_tracked", "head.cls.bias"] {
            #expect(names.contains(name), "\(name) missing")
        }
        let images = Tensor.normal([2, 3, 24, 40], using: &rng)
        let context = ForwardContext()
        #expect(model.headLogits(images, context: context).shape == [2, 4, 12, 20])
        let logits = model(images, context: context)
        #expect(logits.shape == [2, 4, 24, 40])
        #expect(logits.values.allSatisfy { $0.isFinite })

        // One loss + backward reaches the head and the backbone.
        var labels = [Int32](repeating: 255, count: 2 * 24 * 40)   // every fifth pixel stays ignored
        for i in labels.indices where i % 5 != 4 { labels[i] = Int32(i % 4) }
        let (loss, _) = try model.loss(images, labels: labels, context: context)
        #expect(loss.item.isFinite && loss.item > 0)
        loss.backward()
        for name in ["head.conv.weight", "head.bn.weight", "head.cls.weight", "head.norm.bias", "blocks.0.attn.qkv.weight"] {
            let grad = model.namedParameters().first { $0.0 == name }?.1.grad
            #expect(grad != nil && grad!.values.contains { $0 != 0 }, "\(name) has no gradient")
        }
    }
}
