// conv2d and convTranspose2x2 against naive direct loops (channels-last input, PyTorch-layout weights),
// by hand, by finite differences, and on inputs large enough to need several scratch chunks.
//
// Legend: B batch, H×W input, Cin/Cout channels, kh×kw kernel, s stride, p padding, Ho×Wo output.
import AdaTensor
import AdaTestSupport
import Testing

/// One conv2d configuration (small sizes, odd where it matters).
struct ConvConfig: Sendable, CustomStringConvertible {
    var batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int
    var kh: Int, kw: Int, stride: Int, padding: Int

    var outH: Int { (height + 2 * padding - kh) / stride + 1 }
    var outW: Int { (width + 2 * padding - kw) / stride + 1 }
    var description: String {
        "\(kh)×\(kw) s\(stride) p\(padding), x [\(batch), \(height), \(width), \(inChannels)] → Cout \(outChannels)"
    }

    static let all: [ConvConfig] = [
        ConvConfig(batch: 2, height: 5, width: 6, inChannels: 3, outChannels: 4, kh: 3, kw: 3, stride: 1, padding: 1),
        ConvConfig(batch: 2, height: 7, width: 9, inChannels: 4, outChannels: 3, kh: 3, kw: 3, stride: 2, padding: 1),
        ConvConfig(batch: 3, height: 4, width: 5, inChannels: 6, outChannels: 5, kh: 1, kw: 1, stride: 1, padding: 0),
        ConvConfig(batch: 2, height: 5, width: 7, inChannels: 3, outChannels: 2, kh: 1, kw: 1, stride: 2, padding: 0),
        ConvConfig(batch: 2, height: 6, width: 5, inChannels: 3, outChannels: 4, kh: 2, kw: 2, stride: 2, padding: 0),
        ConvConfig(batch: 2, height: 6, width: 7, inChannels: 2, outChannels: 3, kh: 5, kw: 5, stride: 1, padding: 2),
        ConvConfig(batch: 2, height: 7, width: 6, inChannels: 3, outChannels: 2, kh: 3, kw: 2, stride: 2, padding: 1),
        // Padding wider than the kernel: the border outputs see only zeros (bias alone).
        ConvConfig(batch: 2, height: 3, width: 4, inChannels: 2, outChannels: 3, kh: 1, kw: 1, stride: 1, padding: 1),
    ]
}

@Suite("Convolution")
struct ConvolutionTests {
    // MARK: Naive references (Double accumulation)

    /// y[b, oy, ox, co] = bias[co] + Σ_{ci, ky, kx} w[co, ci, ky, kx] · x[b, oy·s − p + ky, ox·s − p + kx, ci].
    static func naiveConv(_ x: Tensor, _ w: Tensor, bias: Tensor?, stride s: Int, padding p: Int) -> [Float] {
        let (batch, height, width, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let outH = (height + 2 * p - kh) / s + 1, outW = (width + 2 * p - kw) / s + 1
        var y = [Float](repeating: 0, count: batch * outH * outW * cout)
        for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW { for co in 0..<cout {
            var sum = Double(bias?.data[co] ?? 0)
            for ci in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * s - p + ky, ix = ox * s - p + kx
                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                sum += Double(w.data[((co * cin + ci) * kh + ky) * kw + kx])
                    * Double(x.data[((b * height + iy) * width + ix) * cin + ci])
            } } }
            y[((b * outH + oy) * outW + ox) * cout + co] = Float(sum)
        } } } }
        return y
    }

    /// dL/dx, dL/dw, dL/dbias of L = Σ y·gy, by the same loops (every (output, tap) pair adds its share).
    static func naiveConvBackward(_ x: Tensor, _ w: Tensor, gy: Tensor, stride s: Int, padding p: Int)
        -> (gx: [Float], gw: [Float], gb: [Float]) {
        let (batch, height, width, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (cout, kh, kw) = (w.shape[0], w.shape[2], w.shape[3])
        let outH = gy.shape[1], outW = gy.shape[2]
        var gx = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: w.count)
        var gb = [Double](repeating: 0, count: cout)
        for b in 0..<batch { for oy in 0..<outH { for ox in 0..<outW { for co in 0..<cout {
            let g = Double(gy.data[((b * outH + oy) * outW + ox) * cout + co])
            gb[co] += g
            for ci in 0..<cin { for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * s - p + ky, ix = ox * s - p + kx
                guard iy >= 0, iy < height, ix >= 0, ix < width else { continue }
                let xi = ((b * height + iy) * width + ix) * cin + ci, wi = ((co * cin + ci) * kh + ky) * kw + kx
                gx[xi] += g * Double(w.data[wi])
                gw[wi] += g * Double(x.data[xi])
            } } }
        } } } }
        return (gx.map(Float.init), gw.map(Float.init), gb.map(Float.init))
    }

    /// y[b, 2i+dy, 2j+dx, co] = bias[co] + Σ_ci x[b, i, j, ci] · w[ci, co, dy, dx].
    static func naiveTransposed(_ x: Tensor, _ w: Tensor, bias: Tensor?) -> [Float] {
        let (batch, height, width, cin) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let cout = w.shape[1]
        var y = [Float](repeating: 0, count: batch * 4 * height * width * cout)
        for b in 0..<batch { for i in 0..<height { for j in 0..<width { for dy in 0..<2 { for dx in 0..<2 {
            for co in 0..<cout {
                var sum = Double(bias?.data[co] ?? 0)
                for ci in 0..<cin {
                    sum += Double(x.data[((b * height + i) * width + j) * cin + ci])
                        * Double(w.data[((ci * cout + co) * 2 + dy) * 2 + dx])
                }
                y[((b * 2 * height + 2 * i + dy) * 2 * width + 2 * j + dx) * cout + co] = Float(sum)
            }
        } } } } }
        return y
    }

    /// max |a − b| / (1 + max |b|): scale-aware, since chunked sums grow with K.
    static func relativeDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count, "sizes \(a.count) and \(b.count) differ")
        let scale = 1 + (b.map { abs($0) }.max() ?? 0)
        return (zip(a, b).map { abs($0 - $1) }.max() ?? 0) / scale
    }

    static func random(_ config: ConvConfig, seed: UInt64, requiresGrad: Bool = false) -> (x: Tensor, w: Tensor, b: Tensor) {
        var rng = RandomGenerator(seed: seed)
        let x = Tensor.normal([config.batch, config.height, config.width, config.inChannels], using: &rng,
                              requiresGrad: requiresGrad)
        let w = Tensor.normal([config.outChannels, config.inChannels, config.kh, config.kw], using: &rng,
                              requiresGrad: requiresGrad)
        let b = Tensor.normal([config.outChannels], using: &rng, requiresGrad: requiresGrad)
        return (x, w, b)
    }

    // MARK: By hand

    @Test func conv2dForwardByHand() {
        // 3×3 image 1…9, kernel [[1, 2], [3, 4]], no padding, bias 0.5:
        // top-left 1·1 + 2·2 + 3·4 + 4·5 = 37, then 47, 67, 77.
        let x = Tensor(shape: [1, 3, 3, 1], values: (1...9).map(Float.init))
        let w = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let y = x.conv2d(w, bias: Tensor([0.5]))
        #expect(y.shape == [1, 2, 2, 1])
        #expect(y.values == [37.5, 47.5, 67.5, 77.5])

        // All-ones 3×3 kernel, padding 1: each output is the sum of its (clipped) neighbourhood.
        let same = x.conv2d(Tensor.ones([1, 1, 3, 3]), bias: nil, padding: 1)
        #expect(same.values == [12, 21, 16, 27, 45, 33, 24, 39, 28])

        // Stride 2 on the same image with padding 1: outputs at (0,0), (0,2), (2,0), (2,2).
        let strided = x.conv2d(Tensor.ones([1, 1, 3, 3]), bias: nil, stride: 2, padding: 1)
        #expect(strided.shape == [1, 2, 2, 1])
        #expect(strided.values == [12, 16, 24, 28])
    }

    @Test func conv2dChannelLayoutByHand() {
        // One pixel with channels (1, 2); weight [Cout 3, Cin 2, 1, 1] rows (1, 0), (0, 1), (1, 1).
        let x = Tensor(shape: [1, 1, 1, 2], values: [1, 2])
        let w = Tensor(shape: [3, 2, 1, 1], values: [1, 0, 0, 1, 1, 1])
        #expect(x.conv2d(w, bias: nil).values == [1, 2, 3])
        // The same through the im2col path (padding 1 → 3×3 output, centre pixel is the real one).
        let padded = x.conv2d(w, bias: Tensor([10, 20, 30]), padding: 1)
        #expect(padded.shape == [1, 3, 3, 3])
        #expect(Array(padded.values[12..<15]) == [11, 22, 33])
        #expect(Array(padded.values[0..<3]) == [10, 20, 30])
    }

    @Test func convTransposeForwardByHand() {
        // One pixel, Cin 2 → Cout 1: y[dy, dx] = 1·w[0, 0, dy, dx] + 2·w[1, 0, dy, dx].
        let x = Tensor(shape: [1, 1, 1, 2], values: [1, 2])
        let w = Tensor(shape: [2, 1, 2, 2], values: [1, 2, 3, 4, 10, 20, 30, 40])
        let y = x.convTranspose2x2(w, bias: Tensor([0.5]))
        #expect(y.shape == [1, 2, 2, 1])
        #expect(y.values == [21.5, 42.5, 63.5, 84.5])

        // Two pixels side by side, each scaling the kernel: blocks land at columns 0–1 and 2–3.
        let pair = Tensor(shape: [1, 1, 2, 1], values: [1, 2])
        let k = Tensor(shape: [1, 1, 2, 2], values: [1, 2, 3, 4])
        let up = pair.convTranspose2x2(k, bias: nil)
        #expect(up.shape == [1, 2, 4, 1])
        #expect(up.values == [1, 2, 2, 4, 3, 4, 6, 8])
    }

    // MARK: Against the naive loops

    @Test(arguments: ConvConfig.all, [true, false])
    func conv2dMatchesNaive(config: ConvConfig, withBias: Bool) {
        let (x, w, b) = Self.random(config, seed: 11)
        let y = x.conv2d(w, bias: withBias ? b : nil, stride: config.stride, padding: config.padding)
        #expect(y.shape == [config.batch, config.outH, config.outW, config.outChannels])
        let reference = Self.naiveConv(x, w, bias: withBias ? b : nil, stride: config.stride, padding: config.padding)
        let diff = Self.relativeDifference(y.values, reference)
        #expect(diff < 1e-5, "\(config): max relative |Δ| = \(diff)")
    }

    @Test func stridedOddSizesGiveFloorOutput() {
        // 7×9 with 3×3, stride 2, padding 1 → 4×5 (floor of (7 + 2 − 3)/2 + 1, (9 + 2 − 3)/2 + 1).
        let y = Tensor.zeros([1, 7, 9, 2]).conv2d(Tensor.zeros([3, 2, 3, 3]), bias: nil, stride: 2, padding: 1)
        #expect(y.shape == [1, 4, 5, 3])
        // 6×5 with 2×2, stride 2 → 3×2: the last input column is dropped.
        let z = Tensor.zeros([1, 6, 5, 1]).conv2d(Tensor.zeros([1, 1, 2, 2]), bias: nil, stride: 2)
        #expect(z.shape == [1, 3, 2, 1])
    }

    @Test(arguments: [true, false])
    func convTransposeMatchesNaive(withBias: Bool) {
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.normal([3, 3, 5, 7], using: &rng)
        let w = Tensor.normal([7, 5, 2, 2], using: &rng)
        let b = Tensor.normal([5], using: &rng)
        let y = x.convTranspose2x2(w, bias: withBias ? b : nil)
        #expect(y.shape == [3, 6, 10, 5])
        let diff = Self.relativeDifference(y.values, Self.naiveTransposed(x, w, bias: withBias ? b : nil))
        #expect(diff < 1e-5, "max relative |Δ| = \(diff)")
    }

    // MARK: Gradients

    @Test(arguments: ConvConfig.all, [true, false])
    func conv2dGradients(config: ConvConfig, withBias: Bool) {
        let (x, w, b) = Self.random(config, seed: 13, requiresGrad: true)
        let report = GradCheck.run(withBias ? [x, w, b] : [x, w]) { t in
            t[0].conv2d(t[1], bias: withBias ? t[2] : nil, stride: config.stride, padding: config.padding)
        }
        #expect(report.passed, "\(config): \(report)")
    }

    /// Backward against the naive backward loops (which the finite-difference checks above vouch for),
    /// one input needing a gradient at a time: frozen inputs must get none and must not break the others.
    @Test(arguments: ConvConfig.all)
    func conv2dBackwardMatchesNaive(config: ConvConfig) {
        let (x, w, b) = Self.random(config, seed: 14)
        var rng = RandomGenerator(seed: 15)
        let gy = Tensor.normal([config.batch, config.outH, config.outW, config.outChannels], using: &rng)
        let reference = Self.naiveConvBackward(x, w, gy: gy, stride: config.stride, padding: config.padding)
        for trainable in [x, w, b] {
            for t in [x, w, b] { t.requiresGrad = t === trainable; t.grad = nil }
            x.conv2d(w, bias: b, stride: config.stride, padding: config.padding).backward(gradient: gy)
            #expect((x.grad == nil) == (trainable !== x) && (w.grad == nil) == (trainable !== w)
                    && (b.grad == nil) == (trainable !== b), "\(config): gradient on a frozen input")
            let expected = trainable === x ? reference.gx : trainable === w ? reference.gw : reference.gb
            let diff = Self.relativeDifference(trainable.grad?.values ?? [], expected)
            #expect(diff < 1e-5, "\(config), input \(trainable.shape): max relative |Δ| = \(diff)")
        }
    }

    @Test(arguments: [true, false])
    func convTransposeGradients(withBias: Bool) {
        var rng = RandomGenerator(seed: 16)
        let x = Tensor.normal([2, 3, 2, 3], using: &rng, requiresGrad: true)
        let w = Tensor.normal([3, 5, 2, 2], using: &rng, requiresGrad: true)
        let b = Tensor.normal([5], using: &rng, requiresGrad: true)
        let report = GradCheck.run(withBias ? [x, w, b] : [x, w]) { t in
            t[0].convTranspose2x2(t[1], bias: withBias ? t[2] : nil)
        }
        #expect(report.passed, "\(report)")
    }

    /// Two uses of the same tensors: gradients add up (beta 1 in every GEMM, += in col2im). Covers the
    /// stride-1 path (dx as a conv of gy), the col2im path (stride 2) and the 1×1 fast path.
    @Test(arguments: [ConvConfig.all[0], ConvConfig.all[1], ConvConfig.all[2]])
    func gradientsAccumulate(config: ConvConfig) {
        let (x, w, b) = Self.random(config, seed: 17, requiresGrad: true)
        let (s, p) = (config.stride, config.padding)
        let ones = Tensor.ones([config.batch, config.outH, config.outW, config.outChannels])
        for t in [x, w, b] { t.grad = nil }
        x.conv2d(w, bias: b, stride: s, padding: p).backward(gradient: ones)
        let single = [x, w, b].map { $0.grad!.values }
        for t in [x, w, b] { t.grad = nil }
        let y1 = x.conv2d(w, bias: b, stride: s, padding: p), y2 = x.conv2d(w, bias: b, stride: s, padding: p)
        (y1 + y2).backward(gradient: ones)
        for (t, g) in zip([x, w, b], single) {
            let diff = Self.relativeDifference(t.grad!.values, g.map { 2 * $0 })
            #expect(diff < 1e-6, "\(config), input \(t.shape): max relative |Δ| = \(diff)")
        }
    }

    // MARK: Several scratch chunks

    /// Inputs sized from the public scratch budget so that the column matrices need two chunks, the
    /// second shorter and starting inside the second image (chunk edges cross image rows and images).
    /// Cin = Cout, so at stride 1 the input gradient (a conv of gy with kh·kw·Cout columns) is chunked too.
    @Test(arguments: [1, 2])
    func conv2dChunkedMatchesNaive(stride: Int) {
        let channels = 16, kernel = 3, padding = 1, outW = 12
        let width = (outW - 1) * stride + kernel - 2 * padding
        let rowsPerChunk = Tensor.convolutionScratchBytes / (4 * outW * kernel * kernel * channels)
        let outH = rowsPerChunk * 3 / 4 + 1 // two images → 1.5 budgets → two chunks
        let height = (outH - 1) * stride + kernel - 2 * padding
        let config = ConvConfig(batch: 2, height: height, width: width, inChannels: channels, outChannels: channels,
                                kh: kernel, kw: kernel, stride: stride, padding: padding)
        #expect(config.outH == outH && config.outW == outW)
        #expect(config.batch * outH > rowsPerChunk && outH * outW >= 512, "input too small to need two chunks")

        let (x, w, b) = Self.random(config, seed: 18, requiresGrad: true)
        let y = x.conv2d(w, bias: b, stride: stride, padding: padding)
        let forwardDiff = Self.relativeDifference(y.values, Self.naiveConv(x, w, bias: b, stride: stride, padding: padding))
        #expect(forwardDiff < 1e-5, "forward: max relative |Δ| = \(forwardDiff)")

        var rng = RandomGenerator(seed: 19)
        let gy = Tensor.normal(y.shape, using: &rng)
        y.backward(gradient: gy)
        let reference = Self.naiveConvBackward(x, w, gy: gy, stride: stride, padding: padding)
        for (name, got, expected) in [("x", x.grad!.values, reference.gx), ("weight", w.grad!.values, reference.gw),
                                      ("bias", b.grad!.values, reference.gb)] {
            let diff = Self.relativeDifference(got, expected)
            #expect(diff < 1e-5, "\(name) gradient: max relative |Δ| = \(diff)")
        }
    }

    @Test func convTransposeChunkedMatchesNaive() {
        let inChannels = 3, outChannels = 64
        let pixelsPerChunk = Tensor.convolutionScratchBytes / (4 * 4 * outChannels)
        let width = 64, height = (pixelsPerChunk * 3 / 2) / width + 1 // one image, 1.5 budgets
        #expect(height * width > pixelsPerChunk, "input too small to need two chunks")
        var rng = RandomGenerator(seed: 20)
        let x = Tensor.normal([1, height, width, inChannels], using: &rng, requiresGrad: true)
        let w = Tensor.normal([inChannels, outChannels, 2, 2], using: &rng, requiresGrad: true)
        let b = Tensor.normal([outChannels], using: &rng, requiresGrad: true)
        let y = x.convTranspose2x2(w, bias: b)
        let diff = Self.relativeDifference(y.values, Self.naiveTransposed(x, w, bias: b))
        #expect(diff < 1e-5, "forward: max relative |Δ| = \(diff)")

        // Backward by the transpose identities: dx[p, ci] = Σ_{dy,dx,co} gy·w, dw[ci, co, dy, dx] = Σ_p x·gy.
        let gy = Tensor.normal(y.shape, using: &rng)
        y.backward(gradient: gy)
        var gx = [Double](repeating: 0, count: x.count), gw = [Double](repeating: 0, count: w.count)
        var gb = [Double](repeating: 0, count: outChannels)
        for i in 0..<height { for j in 0..<width { for dy in 0..<2 { for dx in 0..<2 {
            let gRow = ((2 * i + dy) * 2 * width + 2 * j + dx) * outChannels
            for co in 0..<outChannels {
                let g = Double(gy.data[gRow + co])
                gb[co] += g
                for ci in 0..<inChannels {
                    let xi = (i * width + j) * inChannels + ci, wi = ((ci * outChannels + co) * 2 + dy) * 2 + dx
                    gx[xi] += g * Double(w.data[wi])
                    gw[wi] += g * Double(x.data[xi])
                }
            }
        } } } }
        for (name, got, expected) in [("x", x.grad!.values, gx), ("weight", w.grad!.values, gw), ("bias", b.grad!.values, gb)] {
            let d = Self.relativeDifference(got, expected.map(Float.init))
            #expect(d < 1e-5, "\(name) gradient: max relative |Δ| = \(d)")
        }
    }
}
