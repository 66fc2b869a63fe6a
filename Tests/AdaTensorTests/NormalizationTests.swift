import AdaTensor
import AdaTestSupport
import Testing

@Suite("LayerNorm")
struct NormalizationTests {
    @Test func forwardByHand() {
        // Row 1: mean 2.5, biased variance 1.25 → x̂ = (x − 2.5)/√(1.25 + 1e-5), then ·w + b.
        // Row 2 is constant: x̂ = 0, so y = bias (eps keeps it finite).
        let x = Tensor(shape: [2, 4], values: [1, 2, 3, 4, 5, 5, 5, 5])
        let w = Tensor([1, 2, 0.5, -1]), b = Tensor([0, 1, -1, 0.5])
        let y = x.layerNorm(weight: w, bias: b, eps: 1e-5).values
        let expected: [Float] = [-1.3416354, 0.10557639, -0.7763941, -0.84163542, 0, 1, -1, 0.5]
        #expect(compare(y, expected, rtol: 0, atol: 2e-6).passed, "\(y)")
    }

    @Test func epsIsUsed() {
        // Variance 1 (values ±1): x̂ = ±1/√(1 + eps), visibly different for eps = 0.25.
        let x = Tensor([-1, 1, -1, 1])
        let y = x.layerNorm(weight: Tensor.ones([4]), bias: Tensor.zeros([4]), eps: 0.25).values
        #expect(compare(y, [-0.8944272, 0.8944272, -0.8944272, 0.8944272], rtol: 0, atol: 1e-6).passed, "\(y)")
    }

    /// Values around 1e4 with spread 1/8…3/8: a one-pass E[x²] − E[x]² in float32 loses the whole variance
    /// (ulp of Σx² ≈ 64); the two-pass form is exact here because every sum is representable.
    @Test func largeMeanKeepsTheVariance() {
        let offsets: [Float] = [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75]
        let x = Tensor(shape: [2, 7], values: offsets.map { 10_000 + $0 } + offsets.map { -20_000 + 2 * $0 })
        let y = x.layerNorm(weight: Tensor.ones([7]), bias: Tensor.zeros([7]), eps: 1e-6).values
        // Offsets − 0.375 over the biased std 0.25 → (k − 3)/2 for k = 0…6, same for the scaled row.
        let expected: [Float] = [-1.5, -1, -0.5, 0, 0.5, 1, 1.5]
        let eps1 = Float(1 / (1 + 1e-6 / 0.0625).squareRoot()), eps2 = Float(1 / (1 + 1e-6 / 0.25).squareRoot())
        #expect(compare(y, expected.map { $0 * eps1 } + expected.map { $0 * eps2 }, rtol: 0, atol: 1e-5).passed, "\(y)")
    }

    static let gradientShapes: [[Int]] = [[1, 7], [3, 7], [4, 65], [2, 3, 7], [2, 3, 65]]

    @Test(arguments: gradientShapes)
    func gradientsForInputWeightAndBias(shape: [Int]) {
        var rng = RandomGenerator(seed: 41)
        let d = shape.last!
        let x = Tensor.normal(shape, mean: 0.5, std: 2, using: &rng, requiresGrad: true)
        let w = Tensor.normal([d], mean: 1, std: 0.5, using: &rng, requiresGrad: true)
        let b = Tensor.normal([d], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, w, b]) { $0[0].layerNorm(weight: $0[1], bias: $0[2], eps: 1e-5) }
        #expect(report.passed, "\(shape): \(report)")
    }

    /// Frozen weight/bias with a trainable input (ViT backbone under an adapter), and the reverse.
    @Test(arguments: [(true, false, false), (false, true, true), (false, true, false), (false, false, true),
                      (true, true, false)])
    func partiallyFrozenInputs(flags: (Bool, Bool, Bool)) {
        let trainable = (x: flags.0, weight: flags.1, bias: flags.2)
        var rng = RandomGenerator(seed: 42)
        let x = Tensor.normal([3, 2, 65], using: &rng, requiresGrad: trainable.x)
        let w = Tensor.normal([65], mean: 1, std: 0.5, using: &rng, requiresGrad: trainable.weight)
        let b = Tensor.normal([65], using: &rng, requiresGrad: trainable.bias)
        let report = GradCheck.run([x, w, b]) { $0[0].layerNorm(weight: $0[1], bias: $0[2], eps: 1e-6) }
        #expect(report.passed, "\(trainable): \(report)")
        // Frozen tensors get no gradient buffer at all.
        x.layerNorm(weight: w, bias: b, eps: 1e-6).sum().backward()
        #expect((x.grad != nil) == trainable.x && (w.grad != nil) == trainable.weight && (b.grad != nil) == trainable.bias)
    }

    /// Many rows, so the backward splits them over threads with per-thread partial sums for the weight
    /// and bias gradients: compare with a double-precision reference, twice (gradients accumulate).
    @Test func parallelBackwardMatchesDoubleReference() {
        var rng = RandomGenerator(seed: 43)
        let rows = 1200, d = 65
        let x = Tensor.normal([rows, d], mean: 3, std: 2, using: &rng, requiresGrad: true)
        let w = Tensor.normal([d], mean: 1, std: 0.5, using: &rng, requiresGrad: true)
        let b = Tensor.normal([d], using: &rng, requiresGrad: true)
        let gy = Tensor.normal([rows, d], using: &rng)
        let eps = 1e-5
        var gx = [Double](repeating: 0, count: rows * d), gw = [Double](repeating: 0, count: d), gb = gw
        var y = [Double](repeating: 0, count: rows * d)
        for r in 0..<rows {
            let row = (0..<d).map { Double(x.data[r * d + $0]) }
            let mean = row.reduce(0, +) / Double(d)
            let variance = row.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(d)
            let rstd = 1 / (variance + eps).squareRoot()
            let xhat = row.map { ($0 - mean) * rstd }
            let g = (0..<d).map { Double(gy.data[r * d + $0]) }
            let gHat = (0..<d).map { g[$0] * Double(w.data[$0]) }
            let meanG = gHat.reduce(0, +) / Double(d)
            let meanGX = (0..<d).map { gHat[$0] * xhat[$0] }.reduce(0, +) / Double(d)
            for j in 0..<d {
                y[r * d + j] = xhat[j] * Double(w.data[j]) + Double(b.data[j])
                gx[r * d + j] = rstd * (gHat[j] - meanG - xhat[j] * meanGX)
                gw[j] += g[j] * xhat[j]
                gb[j] += g[j]
            }
        }
        let out = x.layerNorm(weight: w, bias: b, eps: Float(eps))
        #expect(compare(out.values, y.map { Float($0) }, rtol: 1e-5, atol: 1e-5).passed)
        out.backward(gradient: gy)
        x.layerNorm(weight: w, bias: b, eps: Float(eps)).backward(gradient: gy)
        let twice = { (v: [Double]) in v.map { Float(2 * $0) } }
        let gxCheck = compare(x.grad!.values, twice(gx), rtol: 1e-4, atol: 1e-5)
        let gwCheck = compare(w.grad!.values, twice(gw), rtol: 1e-4, atol: 1e-4)
        let gbCheck = compare(b.grad!.values, twice(gb), rtol: 1e-4, atol: 1e-4)
        #expect(gxCheck.passed, "x: \(gxCheck)")
        #expect(gwCheck.passed, "weight: \(gwCheck)")
        #expect(gbCheck.passed, "bias: \(gbCheck)")
    }
}
