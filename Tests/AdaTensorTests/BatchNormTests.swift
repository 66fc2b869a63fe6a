import AdaTensor
import AdaTestSupport
import Testing

@Suite("BatchNorm")
struct BatchNormTests {
    /// x [3 rows, 2 channels]: channel 0 = (1, 2, 6), channel 1 = (0, 0, 3).
    static func smallInput(requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: [3, 2], values: [1, 0, 2, 0, 6, 3], requiresGrad: requiresGrad)
    }

    @Test func trainingForwardByHand() {
        // Channel 0: mean 3, biased var 14/3; channel 1: mean 1, biased var 2. y = x̂·w + b, eps 1e-5.
        let rm = Tensor.zeros([2]), rv = Tensor.ones([2])
        let y = Self.smallInput().batchNorm(weight: Tensor([2, -1]), bias: Tensor([0.5, 1]), runningMean: rm,
                                            runningVar: rv, training: true).values
        let expected: [Float] = [-1.3516382, 1.7071050, -0.42581911, 1.7071050, 3.2774573, -0.41421003]
        #expect(compare(y, expected, rtol: 0, atol: 2e-6).passed, "\(y)")
    }

    @Test func runningStatisticsUseUnbiasedVarianceAndMomentum() {
        // Unbiased variances (÷ R − 1): 14/2 = 7 and 6/2 = 3. With momentum 0.2:
        // mean: 0.8·0.5 + 0.2·3 = 1.0, 0.8·(−1) + 0.2·1 = −0.6; var: 0.8·2 + 0.2·7 = 3.0, 0.8·1 + 0.2·3 = 1.4.
        let rm = Tensor([0.5, -1]), rv = Tensor([2, 1])
        _ = Self.smallInput().batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true,
                                        momentum: 0.2)
        #expect(compare(rm.values, [1.0, -0.6], rtol: 0, atol: 1e-6).passed, "\(rm.values)")
        #expect(compare(rv.values, [3.0, 1.4], rtol: 0, atol: 1e-6).passed, "\(rv.values)")
        // A second step applies the same rule to the updated values (default momentum 0.1).
        _ = Self.smallInput().batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
        #expect(compare(rm.values, [0.9 * 1.0 + 0.1 * 3, 0.9 * -0.6 + 0.1 * 1], rtol: 0, atol: 1e-6).passed, "\(rm.values)")
        #expect(compare(rv.values, [0.9 * 3.0 + 0.1 * 7, 0.9 * 1.4 + 0.1 * 3], rtol: 0, atol: 1e-6).passed, "\(rv.values)")
    }

    @Test func runningStatisticsUpdateWithoutAutograd() {
        // The update belongs to training mode, not to the graph (PyTorch updates under no_grad too).
        let rm = Tensor.zeros([2]), rv = Tensor.ones([2])
        _ = Autograd.withNoGrad {
            Self.smallInput().batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 1)
        }
        #expect(rm.values == [3, 1] && rv.values == [7, 3], "\(rm.values) \(rv.values)")
    }

    @Test func evalForwardByHandLeavesRunningStatisticsAlone() {
        // eps 0 and running var (4, 0.25) → rstd (0.5, 2); y = (x − rm)·rstd·w + b.
        let rm = Tensor([0.5, -1]), rv = Tensor([4, 0.25])
        let y = Self.smallInput().batchNorm(weight: Tensor([3, -2]), bias: Tensor([1, 0.5]), runningMean: rm,
                                            runningVar: rv, training: false, eps: 0).values
        #expect(y == [1.75, -3.5, 3.25, -3.5, 9.25, -15.5], "\(y)")
        #expect(rm.values == [0.5, -1] && rv.values == [4, 0.25])
    }

    @Test func epsIsUsed() {
        // One channel (−1, 1): biased var 1, so x̂ = ±1/√(1 + eps), visibly different for eps = 0.25.
        let x = Tensor(shape: [2, 1], values: [-1, 1])
        let y = x.batchNorm(weight: nil, bias: nil, runningMean: Tensor.zeros([1]), runningVar: Tensor.ones([1]),
                            training: true, eps: 0.25).values
        #expect(compare(y, [-0.8944272, 0.8944272], rtol: 0, atol: 1e-6).passed, "\(y)")
    }

    /// Values near 1e4 with a spread of an eighth: the two-pass variance keeps it (E[x²] − E[x]² would not).
    @Test func largeMeanKeepsTheVariance() {
        let offsets: [Float] = [0, 0.125, 0.25, 0.375, 0.5, 0.625, 0.75]
        let x = Tensor(shape: [7, 1], values: offsets.map { 10_000 + $0 })
        let rm = Tensor.zeros([1]), rv = Tensor.zeros([1])
        let y = x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true, momentum: 1,
                            eps: 0).values
        #expect(compare(y, [-1.5, -1, -0.5, 0, 0.5, 1, 1.5], rtol: 0, atol: 1e-5).passed, "\(y)")
        // Unbiased variance: Σ(k − 3)²/64 / 6 = 28/384.
        #expect(Swift.abs(rv.item - 28.0 / 384.0) < 1e-6 && rm.item == 10_000.375, "\(rm.item) \(rv.item)")
    }

    static let gradientShapes: [[Int]] = [[3, 7, 5], [3, 7, 17], [2, 3, 5, 5], [21, 17], [2, 1]]

    @Test(arguments: gradientShapes)
    func trainingGradientsForInputWeightAndBias(shape: [Int]) {
        var rng = RandomGenerator(seed: 51)
        let c = shape.last!
        let x = Tensor.normal(shape, mean: 0.5, std: 2, using: &rng, requiresGrad: true)
        let w = Tensor.normal([c], mean: 1, std: 0.5, using: &rng, requiresGrad: true)
        let b = Tensor.normal([c], using: &rng, requiresGrad: true)
        let rm = Tensor.zeros([c]), rv = Tensor.ones([c])
        let report = GradCheck.run([x, w, b]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: true)
        }
        #expect(report.passed, "\(shape): \(report)")
    }

    @Test(arguments: [[3, 7, 5], [3, 7, 17], [1, 5]])
    func evalGradientsForInputWeightAndBias(shape: [Int]) {
        var rng = RandomGenerator(seed: 52)
        let c = shape.last!
        let x = Tensor.normal(shape, mean: 0.5, std: 2, using: &rng, requiresGrad: true)
        let w = Tensor.normal([c], mean: 1, std: 0.5, using: &rng, requiresGrad: true)
        let b = Tensor.normal([c], using: &rng, requiresGrad: true)
        let rm = Tensor.normal([c], using: &rng), rv = Tensor.uniform([c], low: 0.5, high: 2, using: &rng)
        let report = GradCheck.run([x, w, b]) {
            $0[0].batchNorm(weight: $0[1], bias: $0[2], runningMean: rm, runningVar: rv, training: false)
        }
        #expect(report.passed, "\(shape): \(report)")
        // Eval mode is affine per channel: dx = gy·w/√(rv + eps), exactly.
        x.grad = nil
        x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: false).sum().backward()
        let expected = (0..<x.count).map { i in w.data[i % c] / (rv.data[i % c] + 1e-5).squareRoot() }
        #expect(compare(x.grad!.values, expected, rtol: 0, atol: 1e-6).passed)
    }

    /// Frozen weight and/or bias (and none at all), both modes: the trainable inputs still check, and
    /// frozen ones get no gradient buffer.
    @Test(arguments: [(true, true, false), (true, false, true), (true, false, false), (false, true, true),
                      (false, true, false)], [true, false])
    func partiallyFrozenInputs(flags: (Bool, Bool, Bool), training: Bool) {
        let trainable = (x: flags.0, weight: flags.1, bias: flags.2)
        var rng = RandomGenerator(seed: 53)
        let x = Tensor.normal([3, 7, 5], using: &rng, requiresGrad: trainable.x)
        let w = Tensor.normal([5], mean: 1, std: 0.5, using: &rng, requiresGrad: trainable.weight)
        let b = Tensor.normal([5], using: &rng, requiresGrad: trainable.bias)
        let rm = Tensor.normal([5], using: &rng), rv = Tensor.uniform([5], low: 0.5, high: 2, using: &rng)
        func f(_ t: [Tensor]) -> Tensor {
            t[0].batchNorm(weight: t[1], bias: t[2], runningMean: rm, runningVar: rv, training: training)
        }
        let report = GradCheck.run([x, w, b], f)
        #expect(report.passed, "\(trainable) training \(training): \(report)")
        f([x, w, b]).sum().backward()
        #expect((x.grad != nil) == trainable.x && (w.grad != nil) == trainable.weight && (b.grad != nil) == trainable.bias)
    }

    @Test(arguments: [true, false])
    func noAffineParameters(training: Bool) {
        var rng = RandomGenerator(seed: 54)
        let x = Tensor.normal([3, 7, 17], mean: -1, std: 3, using: &rng, requiresGrad: true)
        let rm = Tensor.normal([17], using: &rng), rv = Tensor.uniform([17], low: 0.5, high: 2, using: &rng)
        let report = GradCheck.run([x]) {
            $0[0].batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: training)
        }
        #expect(report.passed, "training \(training): \(report)")
        if training {
            // Normalised output: per channel mean 0 and biased variance ≈ 1 (eps 1e-5 / var ≈ 1e-6 off).
            let y = x.batchNorm(weight: nil, bias: nil, runningMean: rm, runningVar: rv, training: true)
            for j in 0..<17 {
                let column = stride(from: j, to: y.count, by: 17).map { Double(y.data[$0]) }
                let mean = column.reduce(0, +) / Double(column.count)
                let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(column.count)
                #expect(Swift.abs(mean) < 1e-5 && Swift.abs(variance - 1) < 1e-4, "channel \(j): \(mean) \(variance)")
            }
        }
    }

    /// Nothing needs a gradient: no graph is recorded.
    @Test func frozenEverythingRecordsNothing() {
        let y = Self.smallInput().batchNorm(weight: Tensor([1, 1]), bias: Tensor([0, 0]), runningMean: Tensor.zeros([2]),
                                            runningVar: Tensor.ones([2]), training: true)
        #expect(!y.isRecorded)
    }

    /// Many rows, so forward sums and the backward split over threads with private partials: compare
    /// with a double-precision reference, including the running statistics.
    @Test func parallelPathMatchesDoubleReference() {
        var rng = RandomGenerator(seed: 55)
        let rows = 3000, c = 33
        let x = Tensor.normal([rows / 30, 30, c], mean: 3, std: 2, using: &rng, requiresGrad: true)
        let w = Tensor.normal([c], mean: 1, std: 0.5, using: &rng, requiresGrad: true)
        let b = Tensor.normal([c], using: &rng, requiresGrad: true)
        let gy = Tensor.normal([rows / 30, 30, c], using: &rng)
        let rm = Tensor.full([c], 0.25), rv = Tensor.full([c], 2)
        let y = x.batchNorm(weight: w, bias: b, runningMean: rm, runningVar: rv, training: true, momentum: 0.3)
        y.backward(gradient: gy)

        let eps = 1e-5, n = Double(rows)
        var yRef = [Double](repeating: 0, count: rows * c), gxRef = yRef
        var gwRef = [Double](repeating: 0, count: c), gbRef = gwRef, rmRef = gwRef, rvRef = gwRef
        for j in 0..<c {
            let column = (0..<rows).map { Double(x.data[$0 * c + j]) }
            let g = (0..<rows).map { Double(gy.data[$0 * c + j]) }
            let mean = column.reduce(0, +) / n
            let variance = column.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / n
            let rstd = 1 / (variance + eps).squareRoot()
            let xhat = column.map { ($0 - mean) * rstd }
            let sumG = g.reduce(0, +), sumGX = zip(g, xhat).map { $0 * $1 }.reduce(0, +)
            let wj = Double(w.data[j])
            for r in 0..<rows {
                yRef[r * c + j] = xhat[r] * wj + Double(b.data[j])
                gxRef[r * c + j] = wj * rstd * (g[r] - sumG / n - xhat[r] * sumGX / n)
            }
            gwRef[j] = sumGX
            gbRef[j] = sumG
            rmRef[j] = 0.7 * 0.25 + 0.3 * mean
            rvRef[j] = 0.7 * 2 + 0.3 * variance * n / (n - 1)
        }
        let f = { (a: [Double]) in a.map { Float($0) } }
        #expect(compare(y.values, f(yRef), rtol: 1e-5, atol: 1e-5).passed)
        #expect(compare(x.grad!.values, f(gxRef), rtol: 1e-4, atol: 1e-5).passed, "\(compare(x.grad!.values, f(gxRef), rtol: 1e-4, atol: 1e-5))")
        #expect(compare(w.grad!.values, f(gwRef), rtol: 1e-5, atol: 1e-4).passed)
        #expect(compare(b.grad!.values, f(gbRef), rtol: 1e-5, atol: 1e-4).passed)
        #expect(compare(rm.values, f(rmRef), rtol: 1e-6, atol: 1e-6).passed)
        #expect(compare(rv.values, f(rvRef), rtol: 1e-6, atol: 1e-6).passed)
    }
}
