import AdaTensor
import AdaTestSupport
import Testing

/// Naive channels-last references for the pooling ops (Double sums, obvious loops).
enum PoolingReference {
    /// Distinct values (a shuffled arange, centred, ×0.1): every window has a unique maximum that stays
    /// the maximum under a ±0.01 finite-difference step.
    static func distinct(_ shape: [Int], seed: UInt64, requiresGrad: Bool = true) -> Tensor {
        var rng = RandomGenerator(seed: seed)
        let n = shape.elementCount
        let values = (0..<n).map { 0.1 * (Float($0) - Float(n / 2)) }.shuffled(using: &rng)
        return Tensor(shape: shape, values: values, requiresGrad: requiresGrad)
    }

    /// MaxPool2d: the maximum (NaN wins) and the flat input index of the first maximum in row-major window order.
    static func maxPool(_ x: Tensor, kernel k: Int, stride s: Int, padding p: Int) -> (values: [Float], argmax: [Int]) {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let outH = (height + 2 * p - k) / s + 1, outW = (width + 2 * p - k) / s + 1
        var values: [Float] = [], argmax: [Int] = []
        for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW { for c in 0..<channels {
            var best = -Float.infinity, at = -1
            for ky in 0..<k { for kx in 0..<k {
                let iy = oy * s - p + ky, ix = ox * s - p + kx
                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                let index = ((b * height + iy) * width + ix) * channels + c
                if at < 0 || x.data[index] > best || x.data[index].isNaN { best = x.data[index]; at = index }
            } }
            values.append(best); argmax.append(at)
        } } } }
        return (values, argmax)
    }

    /// PyTorch's adaptive window [⌊i·in/out⌋, ⌈(i+1)·in/out⌉).
    static func window(_ i: Int, _ inSize: Int, _ outSize: Int) -> Range<Int> {
        (i * inSize / outSize)..<(((i + 1) * inSize + outSize - 1) / outSize)
    }

    static func adaptiveAvgPool(_ x: Tensor, _ outH: Int, _ outW: Int) -> [Float] {
        let (batch, height, width, channels) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var out: [Float] = []
        for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW { for c in 0..<channels {
            let rows = window(oy, height, outH), cols = window(ox, width, outW)
            var sum = 0.0
            for iy in rows { for ix in cols { sum += Double(x.data[((b * height + iy) * width + ix) * channels + c]) } }
            out.append(Float(sum / Double(rows.count * cols.count)))
        } } } }
        return out
    }

    /// The adaptive pooling's input gradient for output gradient gy: gy / area spread over each window.
    static func adaptiveAvgPoolGradient(_ gy: Tensor, inputShape: [Int]) -> [Float] {
        let (batch, height, width, channels) = (inputShape[0], inputShape[1], inputShape[2], inputShape[3])
        let outH = gy.shape[1], outW = gy.shape[2]
        var gx = [Double](repeating: 0, count: inputShape.elementCount)
        for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW { for c in 0..<channels {
            let rows = window(oy, height, outH), cols = window(ox, width, outW)
            let share = Double(gy.data[((b * outH + oy) * outW + ox) * channels + c]) / Double(rows.count * cols.count)
            for iy in rows { for ix in cols { gx[((b * height + iy) * width + ix) * channels + c] += share } }
        } } } }
        return gx.map { Float($0) }
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }
}

@Suite("Max pooling (channels last)")
struct MaxPoolTests {
    typealias Ref = PoolingReference

    @Test func twoByTwoStrideTwoByHand() {
        // 1×4×4×1: each output is the max of a disjoint 2×2 block.
        let x = Tensor(shape: [1, 4, 4, 1], values: [1, 5, 2, 0,
                                                     3, 4, 8, 7,
                                                     -1, -2, 6, 6,
                                                     -3, -9, 6, 9])
        let y = x.maxPool2d(kernel: 2, stride: 2)
        #expect(y.shape == [1, 2, 2, 1])
        #expect(y.values == [5, 8, -1, 9])
    }

    @Test(arguments: [1, 17]) // 1: scalar tail only; 17: one 16-lane block + tail
    func paddingNeverWinsOnNegativeInput(channels: Int) {
        // Values −1…−9 in channel 0 (channel c scaled by c + 1); 3×3, stride 1, padding 1. If padding counted
        // as 0, every output would be 0.
        let base: [Float] = [-1, -2, -3, -4, -5, -6, -7, -8, -9]
        var values: [Float] = []
        for v in base { for c in 0..<channels { values.append(v * Float(c + 1)) } }
        let x = Tensor(shape: [1, 3, 3, channels], values: values)
        let y = x.maxPool2d(kernel: 3, stride: 1, padding: 1)
        #expect(y.shape == [1, 3, 3, channels])
        let expected: [Float] = [-1, -1, -2,
                                 -1, -1, -2,
                                 -4, -4, -5]
        for c in 0..<channels {
            let channel = (0..<9).map { y.data[$0 * channels + c] }
            #expect(channel == expected.map { $0 * Float(c + 1) }, "channel \(c): \(channel)")
        }
    }

    @Test(arguments: [(3, 2, 1), (2, 2, 0), (3, 1, 1), (5, 3, 2)])
    func forwardMatchesNaive(config: (Int, Int, Int)) {
        let (k, s, p) = config
        var rng = RandomGenerator(seed: UInt64(10 + k * 7 + s))
        for shape in [[2, 7, 9, 3], [2, 5, 5, 5], [1, 6, 7, 37]] {
            let x = Tensor.normal(shape, using: &rng)
            let y = x.maxPool2d(kernel: k, stride: s, padding: p)
            let reference = Ref.maxPool(x, kernel: k, stride: s, padding: p)
            let outH = (shape[1] + 2 * p - k) / s + 1, outW = (shape[2] + 2 * p - k) / s + 1
            #expect(y.shape == [shape[0], outH, outW, shape[3]])
            #expect(y.values == reference.values, "k\(k) s\(s) p\(p) \(shape)")
        }
    }

    @Test func backwardRoutesToTheFirstMaximumOfTies() {
        // Integer values with many ties (and overlapping windows, stride 1 < kernel 3): the gradient of
        // each output must land on the first maximum in row-major window order, accumulating where
        // windows share a winner. Channels 21 cover the 16-lane block and the scalar tail.
        var rng = RandomGenerator(seed: 3)
        let shape = [2, 6, 7, 21]
        let x = Tensor(shape: shape, values: (0..<shape.elementCount).map { _ in Float(rng.int(below: 3)) },
                       requiresGrad: true)
        for (k, s, p) in [(3, 1, 1), (3, 2, 1), (2, 2, 0)] {
            let y = x.maxPool2d(kernel: k, stride: s, padding: p)
            let gy = Tensor.normal(y.shape, using: &rng)
            x.grad = nil
            y.backward(gradient: gy)
            var expected = [Float](repeating: 0, count: x.count)
            for (o, index) in Ref.maxPool(x, kernel: k, stride: s, padding: p).argmax.enumerated() {
                expected[index] += gy.data[o]
            }
            #expect(Ref.maxDifference(x.grad!.values, expected) <= 1e-5, "k\(k) s\(s) p\(p)")
        }
    }

    @Test func nanInAWindowPropagates() {
        // 1×2×4×1, 2×2 stride 2: the NaN sits in the first window only.
        let x = Tensor(shape: [1, 2, 4, 1], values: [1, .nan, 3, 4,
                                                     5, 2, 0, 1], requiresGrad: true)
        let y = x.maxPool2d(kernel: 2, stride: 2)
        #expect(y.data[0].isNaN)
        #expect(y.data[1] == 4)
        y.backward(gradient: Tensor(shape: [1, 1, 2, 1], values: [1, 1]))
        #expect(x.grad!.values == [0, 1, 0, 1, 0, 0, 0, 0])
    }

    @Test(arguments: [(3, 2, 1), (2, 2, 0), (3, 1, 1), (2, 1, 1)])
    func gradient(config: (Int, Int, Int)) {
        let (k, s, p) = config
        for (i, shape) in [[2, 7, 9, 3], [2, 5, 5, 4], [1, 5, 6, 17]].enumerated() {
            let x = Ref.distinct(shape, seed: UInt64(40 + i))
            let report = GradCheck.run([x]) { $0[0].maxPool2d(kernel: k, stride: s, padding: p) }
            #expect(report.passed, "k\(k) s\(s) p\(p) \(shape): \(report)")
        }
    }

    @Test func largeMapUsesBandsAndMatchesNaive() {
        // Big enough for the forward and the backward to split across threads (input row bands).
        let shape = [1, 64, 64, 64]
        let x = Ref.distinct(shape, seed: 5)
        var rng = RandomGenerator(seed: 6)
        for (k, s, p) in [(3, 1, 1), (3, 2, 1)] {
            let y = x.maxPool2d(kernel: k, stride: s, padding: p)
            let reference = Ref.maxPool(x, kernel: k, stride: s, padding: p)
            #expect(y.values == reference.values)
            let gy = Tensor.normal(y.shape, using: &rng)
            x.grad = nil
            y.backward(gradient: gy)
            var expected = [Float](repeating: 0, count: x.count)
            for (o, index) in reference.argmax.enumerated() { expected[index] += gy.data[o] }
            #expect(Ref.maxDifference(x.grad!.values, expected) <= 1e-5, "k\(k) s\(s) p\(p)")
        }
    }

    @Test func noGraphWithoutGradient() {
        var rng = RandomGenerator(seed: 8)
        // 19 channels: the 16-lane path without position tracking, then the scalar tail.
        let x = Tensor.normal([1, 5, 5, 19], using: &rng, requiresGrad: true)
        let y = Autograd.withNoGrad { x.maxPool2d(kernel: 3, stride: 2, padding: 1) }
        #expect(y.graphSize == 0)
        #expect(y.values == Ref.maxPool(x, kernel: 3, stride: 2, padding: 1).values)
    }
}

@Suite("Adaptive average pooling (channels last)")
struct AdaptiveAvgPoolTests {
    typealias Ref = PoolingReference

    @Test func twoByThreeToThreeByTwoByHand() {
        // Rows 2 → 3: windows [0,1), [0,2), [1,2); columns 3 → 2: [0,2), [1,3) (overlapping).
        let x = Tensor(shape: [1, 2, 3, 1], values: [1, 2, 3,
                                                     4, 5, 6], requiresGrad: true)
        let y = x.adaptiveAvgPool2d(height: 3, width: 2)
        #expect(y.shape == [1, 3, 2, 1])
        #expect(y.values == [1.5, 2.5,
                             3, 4,
                             4.5, 5.5])
        // Backward of Σy: each pixel collects 1/area from every window holding it.
        y.backward(gradient: Tensor.ones(y.shape))
        #expect(x.grad!.values == [0.75, 1.5, 0.75,
                                   0.75, 1.5, 0.75])
    }

    @Test func twoByThreeToSixBySixRepeatsPixels() {
        // PyTorch adaptive_avg_pool2d(2×3 → 6×6): row windows [0,1)×3, [1,2)×3; column windows
        // [0,1), [0,1), [1,2), [1,2), [2,3), [2,3) — every output copies one pixel, none averages.
        let x = Tensor(shape: [1, 2, 3, 2], values: [1, -1, 2, -2, 3, -3,
                                                     4, -4, 5, -5, 6, -6], requiresGrad: true)
        let y = x.adaptiveAvgPool2d(height: 6, width: 6)
        #expect(y.shape == [1, 6, 6, 2])
        let firstRow: [Float] = [1, -1, 1, -1, 2, -2, 2, -2, 3, -3, 3, -3]
        let lastRow: [Float] = [4, -4, 4, -4, 5, -5, 5, -5, 6, -6, 6, -6]
        for r in 0..<6 {
            #expect(Array(y.values[(r * 12)..<(r * 12 + 12)]) == (r < 3 ? firstRow : lastRow), "row \(r)")
        }
        // Each input pixel feeds 3 rows × 2 columns of outputs with weight 1.
        y.backward(gradient: Tensor.ones(y.shape))
        #expect(x.grad!.values == [Float](repeating: 6, count: 12))
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 3), (6, 6), (3, 2), (5, 4)])
    func fromTwoByThreeMatchesNaive(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.normal([2, 2, 3, 4], using: &rng)
        let y = x.adaptiveAvgPool2d(height: size.0, width: size.1)
        #expect(y.shape == [2, size.0, size.1, 4])
        #expect(Ref.maxDifference(y.values, Ref.adaptiveAvgPool(x, size.0, size.1)) <= 1e-6)
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 3), (6, 6), (4, 5), (10, 12)])
    func fromSevenByNineMatchesNaive(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 12)
        for channels in [3, 5, 37] {
            let x = Tensor.normal([2, 7, 9, channels], using: &rng)
            let y = x.adaptiveAvgPool2d(height: size.0, width: size.1)
            #expect(y.shape == [2, size.0, size.1, channels])
            #expect(Ref.maxDifference(y.values, Ref.adaptiveAvgPool(x, size.0, size.1)) <= 1e-6, "C \(channels)")
        }
    }

    @Test func identitySizeReturnsTheInput() {
        var rng = RandomGenerator(seed: 13)
        let x = Tensor.normal([2, 7, 9, 3], using: &rng, requiresGrad: true)
        let y = x.adaptiveAvgPool2d(height: 7, width: 9)
        #expect(y.shape == x.shape)
        #expect(y.values == x.values)
        let report = GradCheck.run([x]) { $0[0].adaptiveAvgPool2d(height: 7, width: 9) }
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 3), (6, 6), (4, 11)])
    func gradient(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 14)
        for shape in [[2, 7, 9, 3], [2, 2, 3, 5], [1, 5, 4, 17]] {
            let x = Tensor.normal(shape, using: &rng, requiresGrad: true)
            let report = GradCheck.run([x]) { $0[0].adaptiveAvgPool2d(height: size.0, width: size.1) }
            #expect(report.passed, "\(shape) → \(size): \(report)")
        }
    }

    @Test(arguments: [(1, 1), (6, 6), (70, 66)])
    func largeMapSplitsWorkAndMatchesNaive(size: (Int, Int)) {
        // One image: the forward splits channels (global pooling has a single output row) and the
        // backward splits input rows into bands; (70, 66) has overlapping windows larger than the input.
        var rng = RandomGenerator(seed: 15)
        let x = Tensor.normal([1, 64, 60, 48], using: &rng, requiresGrad: true)
        let y = x.adaptiveAvgPool2d(height: size.0, width: size.1)
        #expect(Ref.maxDifference(y.values, Ref.adaptiveAvgPool(x, size.0, size.1)) <= 1e-5)
        let gy = Tensor.normal(y.shape, using: &rng)
        y.backward(gradient: gy)
        #expect(Ref.maxDifference(x.grad!.values, Ref.adaptiveAvgPoolGradient(gy, inputShape: x.shape)) <= 1e-6)
    }
}

