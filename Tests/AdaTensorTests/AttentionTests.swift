import AdaTensor
import AdaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

@Suite("Fused multi-head attention")
struct AttentionTests {
    /// timm's attention written out with explicit loops in Double: per (b, h), S = q·kᵀ/√hd,
    /// P = softmax(S) per row, O = P·v, head h written to columns h·hd..<(h+1)·hd.
    static func naiveAttention(_ qkv: Tensor, heads: Int) -> [Float] {
        let batch = qkv.shape[0], tokens = qkv.shape[1], width = qkv.shape[2] / 3
        let headWidth = width / heads
        let scale = 1 / Double(headWidth).squareRoot()
        func at(_ b: Int, _ n: Int, _ column: Int) -> Double { Double(qkv.data[(b * tokens + n) * 3 * width + column]) }
        var out = [Float](repeating: 0, count: batch * tokens * width)
        for b in 0..<batch {
            for h in 0..<heads {
                let q = h * headWidth, k = width + h * headWidth, v = 2 * width + h * headWidth
                for i in 0..<tokens {
                    var scores = [Double](repeating: 0, count: tokens)
                    for j in 0..<tokens {
                        var s = 0.0
                        for d in 0..<headWidth { s += at(b, i, q + d) * at(b, j, k + d) }
                        scores[j] = s * scale
                    }
                    let top = scores.max()!
                    let exps = scores.map { exp($0 - top) }
                    let total = exps.reduce(0, +)
                    for d in 0..<headWidth {
                        var o = 0.0
                        for j in 0..<tokens { o += exps[j] / total * at(b, j, v + d) }
                        out[(b * tokens + i) * width + h * headWidth + d] = Float(o)
                    }
                }
            }
        }
        return out
    }

    /// Zero queries give uniform attention: every output row is the mean of v over the tokens.
    @Test func uniformAttentionByHand() {
        // B = 1, N = 2, D = 2, two heads of width 1: q = k = 0, v rows [1, 10] and [3, 30].
        let qkv = Tensor(shape: [1, 2, 6], values: [0, 0, 0, 0, 1, 10,
                                                   0, 0, 0, 0, 3, 30])
        #expect(qkv.attention(heads: 2).values == [2, 20, 2, 20])
    }

    /// One head, N = 2, hd = 1: scores q·k, row softmax, weighted sum — computed by hand.
    @Test func singleHeadByHand() {
        // q = [ln 3 · 1, 0], k = [1, 0] → row 0 scores [ln 3, 0] → P = [3/4, 1/4]; row 1 scores [0, 0] → [1/2, 1/2].
        let ln3: Float = 1.0986123
        let qkv = Tensor(shape: [1, 2, 3], values: [ln3, 1, 4,
                                                   0, 0, 8])
        let out = qkv.attention(heads: 1).values
        #expect(abs(out[0] - 5) < 1e-5)   // 3/4·4 + 1/4·8
        #expect(abs(out[1] - 6) < 1e-5)   // (4 + 8)/2
    }

    static let shapes: [(batch: Int, tokens: Int, width: Int, heads: Int)] = [
        (2, 5, 12, 3), (2, 7, 12, 3), (1, 7, 8, 1), (3, 1, 6, 2), (2, 9, 20, 4),
        // Inference runs CKernels/attention.c for head widths ≤ 64: several query blocks (32 rows), a
        // partial key panel (48), a short last tile; and a head width above 64 (the BLAS path).
        (2, 70, 128, 2), (2, 50, 40, 1), (2, 33, 160, 2),
    ]

    @Test(arguments: shapes)
    func forwardMatchesNaiveReference(shape: (batch: Int, tokens: Int, width: Int, heads: Int)) {
        var rng = RandomGenerator(seed: 21)
        let qkv = Tensor.normal([shape.batch, shape.tokens, 3 * shape.width], using: &rng)
        let out = qkv.attention(heads: shape.heads)
        #expect(out.shape == [shape.batch, shape.tokens, shape.width])
        let closeness = compare(out.values, Self.naiveAttention(qkv, heads: shape.heads), rtol: 1e-5, atol: 1e-6)
        #expect(closeness.passed, "\(shape): \(closeness)")
    }

    /// Scores spread over hundreds (q, k ~ 8σ): the inference kernel's exponentials reach far below e^−87
    /// (clamped there) and stay accurate where the weights matter.
    @Test func widelySpreadScoresMatchTheReference() {
        var rng = RandomGenerator(seed: 24)
        let qkv = Tensor.normal([2, 37, 3 * 64], std: 8, using: &rng)
        let out = qkv.attention(heads: 1)
        let closeness = compare(out.values, Self.naiveAttention(qkv, heads: 1), rtol: 1e-5, atol: 1e-5)
        #expect(closeness.passed, "\(closeness)")
    }

    /// The recorded path keeps every head's probabilities; inference (no graph) runs the fused kernel
    /// where the CPU has one: the same values up to float rounding.
    @Test func recordedAndInferencePathsAgree() {
        var rng = RandomGenerator(seed: 22)
        let qkv = Tensor.normal([2, 6, 24], using: &rng, requiresGrad: true)
        let recorded = qkv.attention(heads: 4)
        #expect(recorded.isRecorded)
        let inference = Autograd.withNoGrad { qkv.attention(heads: 4) }
        #expect(!inference.isRecorded)
        #expect(compare(inference.values, recorded.values, rtol: 1e-5, atol: 1e-6).passed)
        let frozen = qkv.detached().attention(heads: 4)
        #expect(!frozen.isRecorded && frozen.values == inference.values)
    }

    @Test(arguments: [(2, 5, 12, 3), (1, 7, 6, 1), (2, 3, 8, 2)])
    func gradientOnQKV(shape: (Int, Int, Int, Int)) {
        let (batch, tokens, width, heads) = shape
        var rng = RandomGenerator(seed: 23)
        let qkv = Tensor.normal([batch, tokens, 3 * width], using: &rng, requiresGrad: true)
        let report = GradCheck.run([qkv]) { $0[0].attention(heads: heads) }
        #expect(report.passed, "\(shape): \(report)")
    }

    /// Long sequences run their (sample, head) pairs in parallel with single-threaded GEMMs; one pair runs
    /// alone with threaded GEMMs. Past 32 MB of probabilities per call the backward recomputes them instead
    /// of keeping them (4 × 1500² floats = 36 MB; one sample alone keeps its 9 MB). All give the same
    /// outputs and gradients.
    @Test(arguments: [(2, 520), (4, 1500)])
    func parallelAndRecomputedPairsMatchThePairsOneAtATime(batch: Int, tokens: Int) {
        var rng = RandomGenerator(seed: 29)
        let qkv = Tensor.normal([batch, tokens, 24], using: &rng, requiresGrad: true)
        let upstream = Tensor.normal([batch, tokens, 8], using: &rng)
        let together = qkv.attention(heads: 1) // `batch` pairs: in parallel on ≥ 2 threads
        together.backward(gradient: upstream)
        for b in 0..<batch {
            let (i, o) = (b * tokens * 24, b * tokens * 8)
            let single = Tensor(shape: [1, tokens, 24], values: Array(qkv.values[i..<(i + tokens * 24)]), requiresGrad: true)
            let alone = single.attention(heads: 1) // 1 pair: threaded GEMMs, probabilities kept
            alone.backward(gradient: Tensor(shape: [1, tokens, 8], values: Array(upstream.values[o..<(o + tokens * 8)])))
            let out = compare(alone.values, Array(together.values[o..<(o + tokens * 8)]), rtol: 1e-5, atol: 1e-6)
            let grad = compare(single.grad!.values, Array(qkv.grad!.values[i..<(i + tokens * 24)]), rtol: 1e-4, atol: 1e-6)
            #expect(out.passed && grad.passed, "sample \(b): \(out) \(grad)")
        }
    }

    /// Two attention ops reading the same qkv: the backward must add (GEMM beta = 1), not overwrite.
    @Test func gradientAccumulatesAcrossUses() {
        var rng = RandomGenerator(seed: 24)
        let qkv = Tensor.normal([1, 5, 9], using: &rng, requiresGrad: true)
        let report = GradCheck.run([qkv]) { t in t[0].attention(heads: 3) + t[0].attention(heads: 1) }
        #expect(report.passed, "\(report)")
    }

    /// Sharp scores (large q·k) must still give a finite softmax and gradient.
    @Test func largeScoresStayFinite() {
        var rng = RandomGenerator(seed: 25)
        let qkv = Tensor.normal([1, 4, 6], std: 40, using: &rng, requiresGrad: true)
        let out = qkv.attention(heads: 1)
        #expect(out.values.allSatisfy { $0.isFinite })
        let closeness = compare(out.values, Self.naiveAttention(qkv, heads: 1), rtol: 1e-4, atol: 1e-4)
        #expect(closeness.passed, "\(closeness)")
        out.sum().backward()
        #expect(qkv.grad?.values.allSatisfy { $0.isFinite } == true)
    }
}

