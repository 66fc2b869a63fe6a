import AdaTensor
import AdaTestSupport
import Testing

@Suite("Linear and matmul")
struct LinearTests {
    @Test func linearForwardByHand() {
        // x = [[1, 2]], W = [[1, 0], [0, 1], [1, 1]], b = [0.5, -1, 2] → [1.5, 1, 5]
        let x = Tensor(shape: [1, 2], values: [1, 2])
        let w = Tensor(shape: [3, 2], values: [1, 0, 0, 1, 1, 1])
        let b = Tensor([0.5, -1, 2])
        #expect(x.linear(w, bias: b).values == [1.5, 1, 5])
    }

    @Test(arguments: [true, false])
    func linearGradients(withBias: Bool) {
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)   // odd sizes, 3-D input
        let w = Tensor.normal([7, 5], using: &rng, requiresGrad: true)
        let b = Tensor.normal([7], using: &rng, requiresGrad: true)
        let report = GradCheck.run(withBias ? [x, w, b] : [x, w]) { t in
            t[0].linear(t[1], bias: withBias ? t[2] : nil)
        }
        #expect(report.passed, "\(report)")
    }

    /// linear(residual:) = residual + linear, in value and in every gradient (with and without bias).
    @Test(arguments: [true, false])
    func linearWithResidualMatchesLinearPlusAdd(withBias: Bool) {
        var rng = RandomGenerator(seed: 4)
        let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)
        let w = Tensor.normal([7, 5], using: &rng, requiresGrad: true)
        let b = Tensor.normal([7], using: &rng, requiresGrad: true)
        let r = Tensor.normal([2, 3, 7], using: &rng, requiresGrad: true)
        let fused = x.linear(w, bias: withBias ? b : nil, residual: r)
        let plain = r + x.linear(w, bias: withBias ? b : nil)
        #expect(zip(fused.values, plain.values).allSatisfy { abs($0 - $1) <= 1e-5 })
        let report = GradCheck.run(withBias ? [x, w, b, r] : [x, w, r]) { t in
            t[0].linear(t[1], bias: withBias ? t[2] : nil, residual: t[withBias ? 3 : 2])
        }
        #expect(report.passed, "\(report)")
    }

    @Test func matmulForwardByHand() {
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2], values: [5, 6, 7, 8])
        #expect(a.matmul(b).values == [19, 22, 43, 50])
        #expect(a.matmul(b, transposeSelf: true).values == [26, 30, 38, 44])
        #expect(a.matmul(b, transposeOther: true).values == [17, 23, 39, 53])
    }

    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulSharedWeightGradients(transposes: (Bool, Bool)) {
        var rng = RandomGenerator(seed: 2)
        let (ta, tb) = transposes
        let a = Tensor.normal(ta ? [2, 4, 3] : [2, 3, 4], using: &rng, requiresGrad: true)
        let b = Tensor.normal(tb ? [5, 4] : [4, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([a, b]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) }
        #expect(report.passed, "\(report)")
    }

    /// A different weight per sample (AdaRoute's routed projections): [B, L, D]·[B, r, D]ᵀ.
    @Test(arguments: [(false, false), (true, false), (false, true), (true, true)])
    func matmulPerSampleWeightGradients(transposes: (Bool, Bool)) {
        var rng = RandomGenerator(seed: 3)
        let (ta, tb) = transposes
        let a = Tensor.normal(ta ? [3, 5, 4] : [3, 4, 5], using: &rng, requiresGrad: true)
        let b = Tensor.normal(tb ? [3, 2, 5] : [3, 5, 2], using: &rng, requiresGrad: true)
        let report = GradCheck.run([a, b]) { $0[0].matmul($0[1], transposeSelf: ta, transposeOther: tb) }
        #expect(report.passed, "\(report)")
    }

    @Test func perSampleWeightsAreIndependent() {
        // Sample 1 uses the identity, sample 0 doubles: outputs must not mix.
        let a = Tensor(shape: [2, 1, 2], values: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 2, 2], values: [2, 0, 0, 2, 1, 0, 0, 1])
        #expect(a.matmul(b).values == [2, 4, 3, 4])
    }
}
