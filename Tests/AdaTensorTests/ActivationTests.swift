import AdaTensor
import AdaTestSupport
import Testing

@Suite("GELU and ReLU")
struct ActivationTests {
    @Test func geluForwardByHand() {
        // 0.5·x·(1 + erf(x/√2)) and the tanh form, evaluated in double precision.
        let x = Tensor([1, -1, 2, -3, 0.5, 0])
        let exact = x.gelu().values
        let expectedExact: [Float] = [0.8413447, -0.15865525, 1.9544997, -0.0040496941, 0.34573123, 0]
        #expect(compare(exact, expectedExact, rtol: 0, atol: 1e-6).passed, "\(exact)")
        let tanh = x.gelu(approximation: .tanh).values
        let expectedTanh: [Float] = [0.8411920, -0.15880801, 1.9545977, -0.0036373921, 0.34571401, 0]
        #expect(compare(tanh, expectedTanh, rtol: 0, atol: 1e-6).passed, "\(tanh)")
        #expect(GELUApproximation(rawValue: "tanh") == .tanh && GELUApproximation(rawValue: "none") == GELUApproximation.none)
    }

    @Test(arguments: GELUApproximation.allCases)
    func geluGradients(approximation: GELUApproximation) {
        var rng = RandomGenerator(seed: 21)
        let x = Tensor.normal([3, 7], std: 2, using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].gelu(approximation: approximation) }
        #expect(report.passed, "\(approximation): \(report)")
    }

    @Test func reluForwardByHand() {
        let y = Tensor([-2, -0.5, 0, 0.25, 3]).relu()
        #expect(y.values == [0, 0, 0, 0.25, 3])
    }

    @Test func reluGradients() {
        var rng = RandomGenerator(seed: 22)
        let x = Tensor.normal([5, 7], using: &rng, requiresGrad: true)
        // Keep every element clear of the kink at 0 by more than the difference step.
        for i in 0..<x.count where Swift.abs(x.data[i]) < 0.05 { x.data[i] += x.data[i] < 0 ? -0.1 : 0.1 }
        let report = GradCheck.run([x]) { $0[0].relu() }
        #expect(report.passed, "\(report)")
    }

    @Test func reluGradientIsAMaskAndZeroAtZero() {
        let x = Tensor([-1, 0, 2], requiresGrad: true)
        x.relu().backward(gradient: Tensor([5, 6, 7]))
        #expect(x.grad?.values == [0, 0, 7])
    }

    @Test func frozenInputRecordsNothing() {
        let x = Tensor([1, -2, 3])
        #expect(!x.gelu().isRecorded && !x.relu().isRecorded && !x.softmax().isRecorded)
    }
}

@Suite("Softmax and log-softmax")
struct SoftmaxTests {
    @Test func softmaxForwardByHand() {
        // e^k / (e + e² + e³)
        let y = Tensor([1, 2, 3]).softmax().values
        #expect(compare(y, [0.09003057, 0.24472847, 0.66524096], rtol: 0, atol: 1e-7).passed, "\(y)")
        let logY = Tensor([1, 2, 3]).logSoftmax().values
        #expect(compare(logY, [-2.4076059, -1.4076059, -0.40760596], rtol: 0, atol: 1e-6).passed, "\(logY)")
    }

    @Test func eachRowIsNormalisedSeparately() {
        // Row 2 is row 1 shifted by 1000 (must not overflow) → same probabilities; row 3 is uniform.
        let x = Tensor(shape: [3, 3], values: [1, 2, 3, 1001, 1002, 1003, -7, -7, -7])
        let y = x.softmax().values
        let expected: [Float] = [0.09003057, 0.24472847, 0.66524096, 0.09003057, 0.24472847, 0.66524096,
                                 1.0 / 3, 1.0 / 3, 1.0 / 3]
        #expect(compare(y, expected, rtol: 0, atol: 1e-6).passed, "\(y)")
        // x − lse near 1000 is exact only to float32's ulp there (6.1e-5), as in PyTorch.
        let logY = x.logSoftmax().values
        #expect(compare(logY, expected.map { logf($0) }, rtol: 0, atol: 1.2e-4).passed, "\(logY)")
    }

    @Test func matchesDoubleReferenceOnWideRows() {
        var rng = RandomGenerator(seed: 31)
        let rows = 37, cols = 1001 // several thread chunks, odd width
        let x = Tensor.normal([rows, cols], std: 4, using: &rng)
        let y = x.softmax().values, logY = x.logSoftmax().values
        var expected = [Float](), expectedLog = [Float]()
        for r in 0..<rows {
            let row = (0..<cols).map { Double(x.data[r * cols + $0]) }
            let m = row.max()!
            let lse = m + log(row.map { exp($0 - m) }.reduce(0, +))
            expected += row.map { Float(exp($0 - lse)) }
            expectedLog += row.map { Float($0 - lse) }
        }
        #expect(compare(y, expected, rtol: 1e-5, atol: 1e-8).passed)
        #expect(compare(logY, expectedLog, rtol: 0, atol: 1e-5).passed)
    }

    @Test(arguments: [false, true])
    func gradientsOnRank3(log: Bool) {
        var rng = RandomGenerator(seed: 32)
        let x = Tensor.normal([2, 3, 5], std: 2, using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { log ? $0[0].logSoftmax() : $0[0].softmax() }
        #expect(report.passed, "\(log ? "logSoftmax" : "softmax"): \(report)")
    }

    @Test func backwardAccumulates() {
        // Softmax rows sum to 1, so d(Σ y)/dx = 0; d(y₀)/dx = y₀(e₀ − y). Two backwards add up.
        let x = Tensor([1, 2, 3], requiresGrad: true)
        x.softmax().backward(gradient: Tensor([1, 0, 0]))
        x.softmax().backward(gradient: Tensor([1, 0, 0]))
        let p: [Float] = [0.09003057, 0.24472847, 0.66524096]
        let expected = [2 * p[0] * (1 - p[0]), -2 * p[0] * p[1], -2 * p[0] * p[2]]
        #expect(compare(x.grad!.values, expected, rtol: 0, atol: 1e-6).passed, "\(x.grad!)")
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
