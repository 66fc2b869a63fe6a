import AdaTensor
import AdaTestSupport
import Testing

@Suite("Depthwise convolution")
struct DepthwiseConvTests {
    /// PyTorch Conv2d(groups = C) as a naive NCHW loop: the channels-last input is first transposed to
    /// [B, C, H, W]; the result comes back as [B, H', W', C] for comparison.
    static func naive(_ x: Tensor, weight w: Tensor, bias: Tensor?, padding pad: Int) -> [Float] {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let k = w.shape.last!, perSample = w.rank == 5
        var nchw = [Float](repeating: 0, count: x.count)
        for b in 0..<batch { for h in 0..<height { for col in 0..<width { for c in 0..<channels {
            nchw[((b * channels + c) * height + h) * width + col] = x.data[((b * height + h) * width + col) * channels + c]
        } } } }
        let outH = height + 2 * pad - k + 1, outW = width + 2 * pad - k + 1
        var out = [Float](repeating: 0, count: batch * outH * outW * channels)
        for b in 0..<batch { for c in 0..<channels { for oy in 0..<outH { for ox in 0..<outW {
            var sum = Double(bias?.data[c] ?? 0)
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy + ky - pad, ix = ox + kx - pad
                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                let wv = w.data[((perSample ? b * channels : 0) + c) * k * k + ky * k + kx]
                sum += Double(wv) * Double(nchw[((b * channels + c) * height + iy) * width + ix])
            } }
            out[((b * outH + oy) * outW + ox) * channels + c] = Float(sum)
        } } } }
        return out
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    @Test func forwardByHand() {
        // 1×3×3×1 input 1…9, all-ones 3×3 kernel, padding 1, bias 0.5: sums of each 3×3 neighbourhood.
        let x = Tensor(shape: [1, 3, 3, 1], values: (1...9).map(Float.init))
        let y = x.depthwiseConv2d(weight: Tensor.ones([1, 1, 3, 3]), bias: Tensor([0.5]))
        #expect(y.shape == [1, 3, 3, 1])
        #expect(y.values == [12, 21, 16, 27, 45, 33, 24, 39, 28].map { $0 + 0.5 })
    }

    @Test func channelsStayApart() {
        // Two channels with different 1×1-like kernels (centre tap only): output = scaled input per channel.
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        var w = [Float](repeating: 0, count: 2 * 9)
        w[4] = 10; w[9 + 4] = -1
        let y = x.depthwiseConv2d(weight: Tensor(shape: [2, 1, 3, 3], values: w), bias: nil)
        #expect(y.values == [10, -2, 30, -4])
    }

    @Test(arguments: [3, 5, 7])
    func sharedKernelMatchesNaive(k: Int) {
        var rng = RandomGenerator(seed: UInt64(20 + k))
        for channels in [5, 19, 37] { // below, between and above the 16-lane blocks
            let x = Tensor.normal([2, 5, 7, channels], using: &rng)
            let w = Tensor.normal([channels, 1, k, k], using: &rng)
            let b = Tensor.normal([channels], using: &rng)
            let y = x.depthwiseConv2d(weight: w, bias: b)
            #expect(y.shape == [2, 5, 7, channels])
            let diff = Self.maxDifference(y.values, Self.naive(x, weight: w, bias: b, padding: k / 2))
            #expect(diff < 1e-4, "k = \(k), C = \(channels): max |Δ| = \(diff)")
        }
    }

    @Test(arguments: [3, 5, 7])
    func perSampleKernelMatchesNaive(k: Int) {
        var rng = RandomGenerator(seed: UInt64(30 + k))
        for channels in [5, 33] {
            let x = Tensor.normal([3, 7, 5, channels], using: &rng)
            let w = Tensor.normal([3, channels, 1, k, k], using: &rng)
            let y = x.depthwiseConv2d(weight: w, bias: nil)
            let diff = Self.maxDifference(y.values, Self.naive(x, weight: w, bias: nil, padding: k / 2))
            #expect(diff < 1e-4, "k = \(k), C = \(channels): max |Δ| = \(diff)")
        }
    }

    @Test func perSampleKernelsAreIndependent() {
        // Same image twice, kernels differ: sample 1 must equal the shared-kernel result of its own kernel.
        var rng = RandomGenerator(seed: 40)
        let image = Tensor.normal([1, 5, 7, 3], using: &rng)
        let twice = Tensor(shape: [2, 5, 7, 3], values: image.values + image.values)
        let kernels = Tensor.normal([2, 3, 1, 3, 3], using: &rng)
        let y = twice.depthwiseConv2d(weight: kernels, bias: nil)
        let second = Tensor(shape: [3, 1, 3, 3], values: Array(kernels.values[27...]))
        let reference = image.depthwiseConv2d(weight: second, bias: nil)
        #expect(Self.maxDifference(Array(y.values[105...]), reference.values) < 1e-6)
        #expect(Self.maxDifference(Array(y.values[..<105]), reference.values) > 1e-3)
    }

    @Test(arguments: [0, 1, 3])
    func explicitPaddingMatchesNaive(padding: Int) {
        // padding 0 shrinks (5×7 → 1×3 with k = 5); padding 3 > k/2 grows and has bias-only borders.
        var rng = RandomGenerator(seed: UInt64(50 + padding))
        let x = Tensor.normal([2, 5, 7, 17], using: &rng)
        let w = Tensor.normal([17, 1, 5, 5], using: &rng)
        let b = Tensor.normal([17], using: &rng)
        let y = x.depthwiseConv2d(weight: w, bias: b, padding: padding)
        #expect(y.shape == [2, 5 + 2 * padding - 4, 7 + 2 * padding - 4, 17])
        let diff = Self.maxDifference(y.values, Self.naive(x, weight: w, bias: b, padding: padding))
        #expect(diff < 1e-4, "padding \(padding): max |Δ| = \(diff)")
    }

    @Test(arguments: [3, 5])
    func sharedKernelGradients(k: Int) {
        var rng = RandomGenerator(seed: UInt64(60 + k))
        let x = Tensor.normal([2, 5, 7, 3], using: &rng, requiresGrad: true)
        let w = Tensor.normal([3, 1, k, k], using: &rng, requiresGrad: true)
        let b = Tensor.normal([3], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, w, b]) { $0[0].depthwiseConv2d(weight: $0[1], bias: $0[2]) }
        #expect(report.passed, "\(report)")
    }

    @Test func sharedKernelGradientsWideChannels() {
        // 19 channels: one 16-lane block plus a scalar tail in every backward loop.
        var rng = RandomGenerator(seed: 70)
        let x = Tensor.normal([1, 3, 5, 19], using: &rng, requiresGrad: true)
        let w = Tensor.normal([19, 1, 3, 3], using: &rng, requiresGrad: true)
        let b = Tensor.normal([19], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, w, b]) { $0[0].depthwiseConv2d(weight: $0[1], bias: $0[2]) }
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [3, 7])
    func perSampleKernelGradients(k: Int) {
        var rng = RandomGenerator(seed: UInt64(80 + k))
        let x = Tensor.normal([2, 5, 7, 3], using: &rng, requiresGrad: true)
        let w = Tensor.normal([2, 3, 1, k, k], using: &rng, requiresGrad: true)
        let b = Tensor.normal([3], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, w, b]) { $0[0].depthwiseConv2d(weight: $0[1], bias: $0[2]) }
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [0, 3])
    func explicitPaddingGradients(padding: Int) {
        var rng = RandomGenerator(seed: UInt64(90 + padding))
        let x = Tensor.normal([2, 5, 7, 3], using: &rng, requiresGrad: true)
        let w = Tensor.normal([3, 1, 3, 3], using: &rng, requiresGrad: true)
        let b = Tensor.normal([3], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, w, b]) { $0[0].depthwiseConv2d(weight: $0[1], bias: $0[2], padding: padding) }
        #expect(report.passed, "\(report)")
        let perSample = Tensor.normal([2, 3, 1, 3, 3], using: &rng, requiresGrad: true)
        let report2 = GradCheck.run([x, perSample]) { $0[0].depthwiseConv2d(weight: $0[1], bias: nil, padding: padding) }
        #expect(report2.passed, "\(report2)")
    }

    @Test func sharedWeightGradientOverManyRowsSplitsAcrossThreads() {
        // Large enough for several partial buffers: the reduced gradient must match the naive sum.
        var rng = RandomGenerator(seed: 100)
        let (batch, height, width, channels, k) = (3, 33, 31, 40, 3)
        let x = Tensor.normal([batch, height, width, channels], using: &rng)
        let w = Tensor.normal([channels, 1, k, k], using: &rng, requiresGrad: true)
        let gy = Tensor.normal([batch, height, width, channels], using: &rng)
        x.depthwiseConv2d(weight: w, bias: nil).backward(gradient: gy)
        var worst: Float = 0
        for c in 0..<channels { for ky in 0..<k { for kx in 0..<k {
            var sum = 0.0
            for b in 0..<batch { for oy in 0..<height { for ox in 0..<width {
                let iy = oy + ky - 1, ix = ox + kx - 1
                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                sum += Double(gy.data[((b * height + oy) * width + ox) * channels + c])
                    * Double(x.data[((b * height + iy) * width + ix) * channels + c])
            } } }
            worst = max(worst, abs(Float(sum) - w.grad!.data[c * 9 + ky * 3 + kx]))
        } } }
        #expect(worst < 1e-3, "max |Δ| = \(worst)")
    }
}
