import AdaTensor
import AdaTestSupport
import Testing

@Suite("Upsampled cross-entropy (fused resize + loss)")
struct UpsampledCrossEntropyTests {
    static func labels(images: Int, height: Int, width: Int, classes: Int, seed: UInt64) -> [Int32] {
        var g = RandomGenerator(seed: seed)
        return (0..<(images * height * width)).map { _ in g.int(below: 5) == 0 ? 255 : Int32(g.int(below: classes)) }
    }

    /// Up, down, mixed and same size: the value and the gradient of the unfused resize + cross-entropy.
    @Test(arguments: [(3, 4, 7, 9), (6, 8, 3, 5), (4, 4, 4, 4), (2, 5, 9, 3)])
    func matchesResizeThenCrossEntropy(inH: Int, inW: Int, outH: Int, outW: Int) throws {
        var g = RandomGenerator(seed: UInt64(inH * 100 + outW))
        let values = Tensor.normal([3, 6, inH, inW], std: 2, using: &g).values
        let labels = Self.labels(images: 3, height: outH, width: outW, classes: 6, seed: 5)
        let a = Tensor(shape: [3, 6, inH, inW], values: values, requiresGrad: true)
        let b = Tensor(shape: [3, 6, inH, inW], values: values, requiresGrad: true)
        let fused = try a.upsampledCrossEntropy(height: outH, width: outW, labels: labels)
        let plain = try b.resizedBilinear(height: outH, width: outW).crossEntropy(labels: labels)
        #expect(abs(fused.item - plain.item) <= 1e-6 * abs(plain.item))
        (fused * 1.5).backward()
        (plain * 1.5).backward()
        let result = compare(a.grad!, b.grad!, rtol: 1e-5, atol: 1e-7)
        #expect(result.passed, "\(result)")
    }

    @Test func gradientMatchesFiniteDifferences() {
        var g = RandomGenerator(seed: 3)
        let logits = Tensor.normal([2, 4, 3, 3], using: &g, requiresGrad: true)
        let labels = Self.labels(images: 2, height: 5, width: 7, classes: 4, seed: 9)
        let report = GradCheck.run([logits]) { t in try! t[0].upsampledCrossEntropy(height: 5, width: 7, labels: labels) }
        #expect(report.passed, "\(report)")
    }

    @Test func ignoredPixelsAndBadLabelsBehaveAsCrossEntropy() throws {
        let logits = Tensor.zeros([1, 3, 2, 2], requiresGrad: true)
        let allIgnored = try logits.upsampledCrossEntropy(height: 4, width: 4, labels: [Int32](repeating: 255, count: 16))
        #expect(allIgnored.item == 0)
        allIgnored.backward()
        #expect(logits.grad!.values.allSatisfy { $0 == 0 })
        var bad = [Int32](repeating: 1, count: 16)
        bad[6] = 7
        #expect { try logits.upsampledCrossEntropy(height: 4, width: 4, labels: bad) } throws: { error in
            guard case TensorError.labelOutOfRange(7, 3, 6) = error else { return false }
            return true
        }
        #expect(throws: TensorError.self) { try logits.upsampledCrossEntropy(height: 4, width: 4, labels: [0, 1]) }
        // Uniform logits: the loss is log C wherever a pixel is scored.
        let uniform = try logits.upsampledCrossEntropy(height: 4, width: 4, labels: [Int32](repeating: 2, count: 16))
        #expect(abs(Double(uniform.item) - 1.0986122886681098) < 1e-6)
    }
}
