import AdaTensor
import AdaTestSupport
import Testing

@Suite("Bilinear resize")
struct ResizeTests {
    /// align_corners=False source taps for one axis, in Double: (low, high, weight of high).
    static func taps(_ inSize: Int, _ outSize: Int) -> [(Int, Int, Double)] {
        (0..<outSize).map { d in
            let src = max((Double(d) + 0.5) * Double(inSize) / Double(outSize) - 0.5, 0)
            let i0 = min(Int(src), inSize - 1)
            return (i0, min(i0 + 1, inSize - 1), src - Double(i0))
        }
    }

    /// Naive reference: each output pixel from its four neighbours.
    static func naive(_ x: Tensor, _ outH: Int, _ outW: Int) -> [Float] {
        let planes = x.shape[0] * x.shape[1], inH = x.shape[2], inW = x.shape[3]
        let rows = taps(inH, outH), cols = taps(inW, outW)
        var out: [Float] = []
        for p in 0..<planes { for (y0, y1, ly) in rows { for (x0, x1, lx) in cols {
            func v(_ r: Int, _ c: Int) -> Double { Double(x.data[(p * inH + r) * inW + c]) }
            out.append(Float((1 - ly) * ((1 - lx) * v(y0, x0) + lx * v(y0, x1)) + ly * ((1 - lx) * v(y1, x0) + lx * v(y1, x1))))
        } } }
        return out
    }

    static func close(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { abs($0 - $1) <= tol }
    }

    @Test func upsample2x2To4x4ByHand() {
        let x = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let y = x.resizedBilinear(height: 4, width: 4)
        #expect(y.shape == [1, 1, 4, 4])
        // torch.nn.functional.interpolate(x, size=(4, 4), mode="bilinear", align_corners=False)
        let expected: [Float] = [
            1.0, 1.25, 1.75, 2.0,
            1.5, 1.75, 2.25, 2.5,
            2.5, 2.75, 3.25, 3.5,
            3.0, 3.25, 3.75, 4.0,
        ]
        #expect(Self.close(y.values, expected), "\(y.values)")
    }

    @Test func downsample4x4To2x2AveragesAtHalfPixels() {
        // src = 0.5 and 2.5 on both axes: each output is the mean of a 2×2 block.
        let x = Tensor(shape: [1, 2, 4, 4], values: (0..<32).map { Float($0 * $0 % 13) })
        let y = x.resizedBilinear(height: 2, width: 2)
        var expected: [Float] = []
        for c in 0..<2 { for by in 0..<2 { for bx in 0..<2 {
            var s: Float = 0
            for dy in 0..<2 { for dx in 0..<2 { s += x.data[c * 16 + (2 * by + dy) * 4 + 2 * bx + dx] } }
            expected.append(s / 4)
        } } }
        #expect(Self.close(y.values, expected), "\(y.values) vs \(expected)")
    }

    @Test func nonIntegerRatio3x5To7x4() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.normal([2, 3, 3, 5], using: &rng)
        let y = x.resizedBilinear(height: 7, width: 4)
        #expect(y.shape == [2, 3, 7, 4])
        #expect(Self.close(y.values, Self.naive(x, 7, 4)))
        // Hand check of one value: output (row 1, col 1) of plane 0. Rows: src = 1.5·3/7 − 0.5 = 1/7 → rows 0, 1
        // with weight 1/7; cols: src = 1.5·5/4 − 0.5 = 1.375 → cols 1, 2 with weight 0.375.
        let (a, b, c, d) = (x.data[1], x.data[2], x.data[6], x.data[7])
        let ly: Float = 1.0 / 7, lx: Float = 0.375
        let byHand = (1 - ly) * ((1 - lx) * a + lx * b) + ly * ((1 - lx) * c + lx * d)
        #expect(abs(y.data[5] - byHand) < 1e-5)
    }

    @Test(arguments: [(9, 4), (2, 11), (1, 3), (5, 1), (16, 5)])
    func mixedSizesMatchNaive(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 6)
        let x = Tensor.normal([1, 2, 6, 7], using: &rng)
        #expect(Self.close(x.resizedBilinear(height: size.0, width: size.1).values, Self.naive(x, size.0, size.1)))
    }

    /// An output of ≥ 16 M floats is written with non-temporal stores: the same bits as a small resize of one of
    /// its planes (rows of 2900 floats: aligned and unaligned row starts, a 4-float tail per row).
    @Test func streamedLargeOutputHasTheBitsOfASmallOne() {
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.normal([1, 2, 9, 7], using: &rng)
        let large = x.resizedBilinear(height: 2900, width: 2900)
        #expect(large.count >= 16 << 20)
        let plane = 2900 * 2900
        for p in 0..<2 {
            let single = Tensor(shape: [1, 1, 9, 7], values: Array(x.values[(p * 63)..<((p + 1) * 63)]))
            let small = single.resizedBilinear(height: 2900, width: 2900)
            let mismatches = (0..<plane).count { small.data[$0].bitPattern != large.data[p * plane + $0].bitPattern }
            #expect(mismatches == 0, "plane \(p): \(mismatches) of \(plane) values differ")
        }
    }

    @Test func identitySizeReturnsTheInput() {
        var rng = RandomGenerator(seed: 7)
        let x = Tensor.normal([2, 3, 5, 4], using: &rng, requiresGrad: true)
        let y = x.resizedBilinear(height: 5, width: 4)
        #expect(y.shape == x.shape)
        #expect(y.values == x.values)
        let report = GradCheck.run([x]) { $0[0].resizedBilinear(height: 5, width: 4) }
        #expect(report.passed, "\(report)")
    }

    @Test func sameHeightOtherWidthKeepsRowsExact() {
        // Height unchanged: each output row is a 1-D resize of its input row alone.
        let x = Tensor(shape: [1, 1, 3, 2], values: [1, 2, 10, 20, 100, 200])
        let y = x.resizedBilinear(height: 3, width: 4)
        #expect(Self.close(y.values, [1, 1.25, 1.75, 2, 10, 12.5, 17.5, 20, 100, 125, 175, 200]))
    }

    @Test(arguments: [(7, 9), (11, 4)])
    func upsampleGradient(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 8)
        let x = Tensor.normal([2, 3, 3, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].resizedBilinear(height: size.0, width: size.1) }
        #expect(report.passed, "\(report)")
    }

    @Test(arguments: [(2, 2), (3, 2), (5, 3), (4, 5)]) // (4, 5): width 9 → 5 takes the blend-rows-first path
    func downsampleGradient(size: (Int, Int)) {
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.normal([2, 3, 7, 9], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].resizedBilinear(height: size.0, width: size.1) }
        #expect(report.passed, "\(report)")
    }
}

@Suite("Bilinear resize, channels last")
struct ResizeChannelsLastTests {
    /// The NCHW op through permutes: [B, H, W, C] → [B, C, H, W] → resize → [B, H', W', C].
    static func throughNCHW(_ x: Tensor, _ outH: Int, _ outW: Int) -> Tensor {
        x.permuted([0, 3, 1, 2]).resizedBilinear(height: outH, width: outW).permuted([0, 2, 3, 1])
    }

    static func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "\(a.count) vs \(b.count) values")
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    /// (input H, W) → (output H, W): up, down, mixed, non-integer factors, one-pixel edges.
    static let sizes: [((Int, Int), (Int, Int))] = [
        ((4, 6), (8, 12)), ((4, 6), (64, 96)), ((4, 6), (2, 3)), ((7, 9), (3, 4)), ((3, 5), (7, 11)),
        ((7, 9), (5, 13)), ((5, 7), (9, 4)), ((6, 7), (1, 3)), ((1, 1), (4, 5)), ((9, 16), (4, 5)),
    ]

    @Test func upsample2x2To4x4ByHand() {
        // Channel 0 is the NCHW hand case; channel 1 is it times 10.
        let x = Tensor(shape: [1, 2, 2, 2], values: [1, 10, 2, 20, 3, 30, 4, 40])
        let y = x.resizedBilinearChannelsLast(height: 4, width: 4)
        #expect(y.shape == [1, 4, 4, 2])
        let expected: [Float] = [
            1.0, 1.25, 1.75, 2.0,
            1.5, 1.75, 2.25, 2.5,
            2.5, 2.75, 3.25, 3.5,
            3.0, 3.25, 3.75, 4.0,
        ]
        #expect((0..<16).map { y.data[2 * $0] } == expected)
        #expect(Self.maxDifference((0..<16).map { y.data[2 * $0 + 1] }, expected.map { 10 * $0 }) <= 1e-5)
    }

    @Test(arguments: sizes)
    func forwardEqualsNCHWOp(size: ((Int, Int), (Int, Int))) {
        let ((inH, inW), (outH, outW)) = size
        var rng = RandomGenerator(seed: UInt64(30 + inH * 17 + outW))
        for channels in [1, 3, 5, 11, 19] { // 1: the NCHW row op; 3, 5, 11: 4/8/16-lane spills
            let x = Tensor.normal([2, inH, inW, channels], using: &rng)
            let y = x.resizedBilinearChannelsLast(height: outH, width: outW)
            #expect(y.shape == [2, outH, outW, channels])
            // Same taps, weights and order of operations: bit-identical.
            #expect(y.values == Self.throughNCHW(x, outH, outW).values, "\(size) C \(channels)")
        }
    }

    @Test(arguments: sizes)
    func gradientEqualsNCHWOpGradient(size: ((Int, Int), (Int, Int))) {
        let ((inH, inW), (outH, outW)) = size
        var rng = RandomGenerator(seed: UInt64(60 + inH * 17 + outW))
        // C 19 with a 64×96 output: the backward splits the input rows into bands across threads; C < 16
        // takes the 16-lane spill path.
        for (batch, channels) in [(2, 3), (1, 19), (1, 1), (2, 7), (1, 11)] {
            let x = Tensor.normal([batch, inH, inW, channels], using: &rng, requiresGrad: true)
            let twin = x.copy()
            twin.requiresGrad = true
            let gy = Tensor.normal([batch, outH, outW, channels], using: &rng)
            x.resizedBilinearChannelsLast(height: outH, width: outW).backward(gradient: gy)
            Self.throughNCHW(twin, outH, outW).backward(gradient: gy)
            // Currently bit-identical; the tolerance leaves room for a differently rounded kernel.
            #expect(Self.maxDifference(x.grad!.values, twin.grad!.values) <= 1e-5, "\(size) C \(channels)")
        }
    }

    @Test(arguments: [((3, 5), (7, 11)), ((4, 6), (8, 12)), ((7, 9), (3, 4)), ((7, 9), (2, 2)), ((7, 9), (5, 13)),
                      ((5, 4), (9, 3))])
    func gradient(size: ((Int, Int), (Int, Int))) {
        let ((inH, inW), (outH, outW)) = size
        var rng = RandomGenerator(seed: 70)
        let x = Tensor.normal([2, inH, inW, 3], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].resizedBilinearChannelsLast(height: outH, width: outW) }
        #expect(report.passed, "\(size): \(report)")
    }

    @Test func identitySizeReturnsAView() {
        var rng = RandomGenerator(seed: 71)
        let x = Tensor.normal([2, 5, 4, 3], using: &rng, requiresGrad: true)
        let y = x.resizedBilinearChannelsLast(height: 5, width: 4)
        #expect(y.shape == x.shape)
        #expect(y.storage === x.storage)
        let report = GradCheck.run([x]) { $0[0].resizedBilinearChannelsLast(height: 5, width: 4) }
        #expect(report.passed, "\(report)")
    }
}
