import AdaTensor
import AdaTestSupport
import Testing

@Suite("Patch embedding")
struct PatchEmbeddingTests {
    /// Direct Conv2d with kernel = stride = p: y[b, gy·gw + gx, d] = bias[d] + Σ w[d, c, ky, kx]·x[b, c, gy·p + ky, gx·p + kx].
    static func naivePatchConv(_ x: Tensor, _ w: Tensor, _ bias: Tensor?) -> [Float] {
        let (batch, channels, height, width) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (dims, p) = (w.shape[0], w.shape[2])
        let (gridH, gridW) = (height / p, width / p)
        var out = [Float](repeating: 0, count: batch * gridH * gridW * dims)
        for b in 0..<batch { for gy in 0..<gridH { for gx in 0..<gridW { for d in 0..<dims {
            var sum = Double(bias?.data[d] ?? 0)
            for c in 0..<channels { for ky in 0..<p { for kx in 0..<p {
                let xv = x.data[((b * channels + c) * height + gy * p + ky) * width + gx * p + kx]
                let wv = w.data[((d * channels + c) * p + ky) * p + kx]
                sum += Double(xv) * Double(wv)
            } } }
            out[((b * gridH + gy) * gridW + gx) * dims + d] = Float(sum)
        } } } }
        return out
    }

    @Test func patchifyForwardByHand() {
        // 1×2×4×4 image, value = 100·c + 10·h + w, patch 2 → 4 patches of 2·2·2 values in (c, ky, kx) order.
        var values: [Float] = []
        for c in 0..<2 { for h in 0..<4 { for w in 0..<4 { values.append(Float(100 * c + 10 * h + w)) } } }
        let image = Tensor(shape: [1, 2, 4, 4], values: values)
        let patches = image.patchified(patchSize: 2)
        #expect(patches.shape == [1, 4, 8])
        let expected: [Float] = [
            0, 1, 10, 11, 100, 101, 110, 111,       // grid (0, 0)
            2, 3, 12, 13, 102, 103, 112, 113,       // grid (0, 1)
            20, 21, 30, 31, 120, 121, 130, 131,     // grid (1, 0)
            22, 23, 32, 33, 122, 123, 132, 133,     // grid (1, 1)
        ]
        #expect(patches.values == expected)
    }

    @Test func patchifyIsAPermutation() {
        // Non-square grid, batch 2, 3 channels, patch 3: every value lands exactly once.
        let image = Tensor(shape: [2, 3, 6, 9], values: (0..<(2 * 3 * 6 * 9)).map(Float.init))
        let patches = image.patchified(patchSize: 3)
        #expect(patches.shape == [2, 6, 27])
        #expect(patches.values.sorted() == image.values)
        // Sample 1, grid (1, 2), channel 2, ky 1, kx 0 → image[1, 2, 4, 6].
        #expect(patches.data[(1 * 6 + 1 * 3 + 2) * 27 + 2 * 9 + 1 * 3 + 0] == image.data[((1 * 3 + 2) * 6 + 4) * 9 + 6])
    }

    @Test(arguments: [true, false])
    func patchEmbeddingMatchesDirectConvolution(withBias: Bool) {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.normal([2, 3, 8, 12], using: &rng)
        let w = Tensor.normal([5, 3, 4, 4], using: &rng)
        let b = Tensor.normal([5], using: &rng)
        let y = x.patchEmbedding(weight: w, bias: withBias ? b : nil)
        #expect(y.shape == [2, 6, 5])
        let reference = Self.naivePatchConv(x, w, withBias ? b : nil)
        let worst = zip(y.values, reference).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst < 1e-4, "max |Δ| = \(worst)")
    }

    @Test func patchifyGradient() {
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.normal([2, 3, 6, 4], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].patchified(patchSize: 2) }
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [true, false])
    func patchEmbeddingGradients(withBias: Bool) {
        var rng = RandomGenerator(seed: 13)
        let x = Tensor.normal([2, 3, 6, 9], using: &rng, requiresGrad: true)
        let w = Tensor.normal([5, 3, 3, 3], using: &rng, requiresGrad: true)
        let b = Tensor.normal([5], using: &rng, requiresGrad: true)
        let report = GradCheck.run(withBias ? [x, w, b] : [x, w]) { t in
            t[0].patchEmbedding(weight: t[1], bias: withBias ? t[2] : nil)
        }
        #expect(report.passed, "\(report)")
    }

    @Test func frozenWeightGivesOnlyImageGradient() {
        var rng = RandomGenerator(seed: 14)
        let x = Tensor.normal([1, 2, 4, 4], using: &rng, requiresGrad: true)
        let w = Tensor.normal([3, 2, 2, 2], using: &rng)
        x.patchEmbedding(weight: w, bias: nil).backward(gradient: Tensor.ones([1, 4, 3]))
        #expect(x.grad != nil)
        #expect(w.grad == nil)
        // dL/dx[c, h, w] = Σ_d w[d, c, h mod 2, w mod 2] with an all-ones output gradient.
        for c in 0..<2 { for h in 0..<4 { for col in 0..<4 {
            var expected: Float = 0
            for d in 0..<3 { expected += w.data[((d * 2 + c) * 2 + h % 2) * 2 + col % 2] }
            #expect(abs(x.grad!.data[(c * 4 + h) * 4 + col] - expected) < 1e-5)
        } } }
    }
}

@Suite("Patch embedding remainders")
struct PatchRemainderTests {
    /// Sizes that are not multiples of the patch: the grid rounds down and leftover pixels are ignored,
    /// as PyTorch's Conv2d(stride = p) does.
    @Test func leftoverPixelsAreIgnored() {
        var rng = RandomGenerator(seed: 31)
        let image = Tensor.normal([2, 3, 10, 13], using: &rng, requiresGrad: true)
        let cropped = Tensor(uninitializedShape: [2, 3, 8, 12])
        for plane in 0..<6 { for y in 0..<8 { for x in 0..<12 { cropped.data[(plane * 8 + y) * 12 + x] = image.data[(plane * 10 + y) * 13 + x] } } }
        let full = image.patchified(patchSize: 4)
        #expect(full.shape == [2, 6, 48])
        #expect(full.values == cropped.patchified(patchSize: 4).values)
        let report = GradCheck.run([image]) { $0[0].patchified(patchSize: 4) }
        #expect(report.passed, "\(report)")
        full.backward(gradient: Tensor.ones(full.shape))
        #expect(image.grad!.data[9 * 13 + 2] == 0 && image.grad!.data[2 * 13 + 12] == 0) // row 9, column 12 unused
    }
}
