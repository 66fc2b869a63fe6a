import AdaTensor
import AdaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The linear layers' own GEMM (CKernels/linear_gemm.c) against a Double triple loop, and the ops that use it.
@Suite("Packed linear GEMM")
struct PackedGEMMTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let m, n, k: Int
        let bias, residual, gelu: Bool
        var testDescription: String { "\(m)×\(n)×\(k) bias \(bias) residual \(residual) gelu \(gelu)" }
    }

    // Short row tiles (m % 8 ≠ 0), partial last panels of one, two or three vectors (n % 48 ≠ 0), odd k.
    static let cases: [Case] = [
        Case(m: 37, n: 48, k: 5, bias: false, residual: false, gelu: false),
        Case(m: 64, n: 100, k: 33, bias: true, residual: false, gelu: false),
        Case(m: 9, n: 7, k: 70, bias: true, residual: true, gelu: false),
        Case(m: 130, n: 200, k: 19, bias: true, residual: false, gelu: true),
        Case(m: 45, n: 96, k: 64, bias: false, residual: true, gelu: true),
        Case(m: 203, n: 576, k: 192, bias: true, residual: true, gelu: false),
        Case(m: 24, n: 75, k: 9, bias: true, residual: true, gelu: true),   // a last panel of two vectors
    ]

    @Test(arguments: cases)
    func matchesATripleLoop(_ c: Case) {
        guard PackedGEMM.available else {
            #expect(!PackedGEMM.handles(rows: c.m, outputs: c.n, inputs: c.k)) // BLAS serves every layer
            return
        }
        var rng = RandomGenerator(seed: 11)
        let x = Tensor.normal([c.m, c.k], using: &rng), w = Tensor.normal([c.n, c.k], using: &rng)
        let b = Tensor.normal([c.n], using: &rng), r = Tensor.normal([c.m, c.n], using: &rng)
        let y = Tensor(uninitializedShape: [c.m, c.n])
        PackedGEMM.linear(rows: c.m, x: x.data, weight: w, bias: c.bias ? b.data : nil,
                          residual: c.residual ? r.data : nil, activation: c.gelu ? .gelu : .none, into: y.data)
        var worst = 0.0
        for i in 0..<c.m {
            for j in 0..<c.n {
                var v = c.bias ? Double(b.data[j]) : 0
                for kk in 0..<c.k { v += Double(x.data[i * c.k + kk]) * Double(w.data[j * c.k + kk]) }
                if c.gelu { v = 0.5 * v * (1 + erf(v / 2.0.squareRoot())) }
                if c.residual { v += Double(r.data[i * c.n + j]) }
                worst = max(worst, abs(Double(y.data[i * c.n + j]) - v) / (1 + abs(v)))
            }
        }
        #expect(worst < 1e-5, "max relative error \(worst)")
    }

    /// Above the row threshold `linear` runs the packed kernel; its gradients still check out.
    @Test func linearThroughTheKernelHasCorrectGradients() {
        var rng = RandomGenerator(seed: 3)
        let x = Tensor.normal([2, 20, 6], using: &rng, requiresGrad: true)    // 40 rows ≥ the threshold
        let w = Tensor.normal([48, 6], using: &rng, requiresGrad: true)
        let b = Tensor.normal([48], using: &rng, requiresGrad: true)
        let r = Tensor.normal([2, 20, 48], using: &rng, requiresGrad: true)
        #expect(PackedGEMM.handles(rows: 40, outputs: 48, inputs: 6) == PackedGEMM.enabled)
        let report = GradCheck.run([x, w, b, r]) { t in t[0].linear(t[1], bias: t[2], residual: t[3]) }
        #expect(report.passed, "\(report)")
    }

    /// linearGELU = gelu(linear): fused when no gradient is recorded, unfused (and differentiable) otherwise.
    @Test func linearGELUMatchesLinearThenGELU() {
        var rng = RandomGenerator(seed: 5)
        let x = Tensor.normal([3, 16, 12], using: &rng, requiresGrad: true)
        let w = Tensor.normal([96, 12], using: &rng, requiresGrad: true)
        let b = Tensor.normal([96], using: &rng, requiresGrad: true)
        let (fused, plain) = Autograd.withNoGrad { (x.linearGELU(w, bias: b), x.linear(w, bias: b).gelu()) }
        #expect(fused.shape == [3, 16, 96])
        #expect(zip(fused.values, plain.values).allSatisfy { abs($0 - $1) <= 1e-5 * (1 + abs($1)) })
        let report = GradCheck.run([x, w, b]) { t in t[0].linearGELU(t[1], bias: t[2]) }
        #expect(report.passed, "\(report)")
    }

    /// Outside `reusingPackedWeights` a weight changed in place is seen at once; inside, the panels packed at
    /// its first use are kept (the scope's contract is that weights do not change).
    @Test func packedWeightsAreKeptOnlyInsideTheScope() {
        var rng = RandomGenerator(seed: 9)
        let x = Tensor.normal([40, 8], using: &rng), w = Tensor.normal([48, 8], using: &rng)
        let before = x.linear(w).values
        w.data[0] += 1
        let after = x.linear(w).values
        #expect(before != after)
        PackedGEMM.reusingPackedWeights {
            #expect(x.linear(w).values == after)
            w.data[0] -= 1
            let cached = x.linear(w).values
            #expect(cached == (PackedGEMM.enabled ? after : before))
        }
        #expect(x.linear(w).values == before)
    }

    /// routedLinear: one weight per sample mixed from a bank. Without a gradient it mixes packed experts and runs
    /// the kernel; compared here with a Double triple loop over the explicitly mixed weights. Shapes: a short
    /// row tile, a 16-wide last panel (n 64), one expert, n under one panel.
    @Test(arguments: [(b: 3, m: 13, e: 4, n: 64, k: 40), (b: 2, m: 33, e: 1, n: 96, k: 17),
                      (b: 1, m: 8, e: 5, n: 7, k: 64), (b: 4, m: 50, e: 12, n: 50, k: 8)])
    func routedLinearMatchesMixingThenMultiplying(_ s: (b: Int, m: Int, e: Int, n: Int, k: Int)) {
        var rng = RandomGenerator(seed: 21)
        let x = Tensor.normal([s.b, s.m, s.k], using: &rng), bank = Tensor.normal([s.e, s.n, s.k], using: &rng)
        let weights = Tensor.normal([s.b, s.e], using: &rng).softmax()
        for cached in [false, true] {
            let y = Autograd.withNoGrad {
                cached ? PackedGEMM.reusingPackedWeights { x.routedLinear(bank: bank, weights: weights) }
                       : x.routedLinear(bank: bank, weights: weights)
            }
            #expect(y.shape == [s.b, s.m, s.n])
            var worst = 0.0
            for b in 0..<s.b {
                for i in 0..<s.m {
                    for j in 0..<s.n {
                        var v = 0.0
                        for kk in 0..<s.k {
                            var w = 0.0
                            for e in 0..<s.e { w += Double(weights.data[b * s.e + e]) * Double(bank.data[(e * s.n + j) * s.k + kk]) }
                            v += Double(x.data[(b * s.m + i) * s.k + kk]) * w
                        }
                        worst = max(worst, abs(Double(y.data[(b * s.m + i) * s.n + j]) - v) / (1 + abs(v)))
                    }
                }
            }
            #expect(worst < 1e-5, "cached \(cached): max relative error \(worst)")
        }
    }

    /// With a gradient to record, routedLinear is the mixing matmul then the batched matmul: check its gradients
    /// (input, bank and routing weights) and that it agrees with the no-gradient kernel path.
    @Test func routedLinearHasCorrectGradientsAndAgreesWithTheKernel() {
        var rng = RandomGenerator(seed: 23)
        let x = Tensor.normal([2, 5, 6], using: &rng, requiresGrad: true)
        let bank = Tensor.normal([3, 4, 6], using: &rng, requiresGrad: true)
        let weights = Tensor.normal([2, 3], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x, bank, weights]) { t in t[0].routedLinear(bank: t[1], weights: t[2]) }
        #expect(report.passed, "\(report)")
        let recorded = x.routedLinear(bank: bank, weights: weights).values
        let inferred = Autograd.withNoGrad { x.routedLinear(bank: bank, weights: weights) }.values
        #expect(zip(recorded, inferred).allSatisfy { abs($0 - $1) <= 1e-5 * (1 + abs($1)) })
    }
}
