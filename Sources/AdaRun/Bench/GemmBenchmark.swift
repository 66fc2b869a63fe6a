// `adaroute bench gemm`: the engine's linear op (GEMM + bias, as the ViT uses it) against a bare
// cblas_sgemm of the same layout, to show the engine adds no overhead to the dominant kernel.
import AdaTensor

public struct GemmShape: Sendable, CustomStringConvertible {
    public let m: Int, k: Int, n: Int
    public init(m: Int, k: Int, n: Int) { self.m = m; self.k = k; self.n = n }
    public var description: String { "\(m)×\(k)×\(n)" }
    public var flops: Double { 2 * Double(m) * Double(k) * Double(n) }

    /// Square sizes plus the ViT-S/16 training shapes at batch 8 (1576 tokens): qkv, fc2, fc1.
    public static let standard: [GemmShape] = [
        GemmShape(m: 1024, k: 1024, n: 1024), GemmShape(m: 2048, k: 2048, n: 2048),
        GemmShape(m: 1576, k: 384, n: 1152), GemmShape(m: 1576, k: 1536, n: 384), GemmShape(m: 1576, k: 384, n: 1536),
    ]
}

public struct GemmBenchmarkRow: Sendable {
    public let shape: GemmShape
    public let threads: Int
    public let rawGflops: Double
    public let engineGflops: Double
    public var ratio: Double { engineGflops / rawGflops }
}

public enum GemmBenchmark {
    /// Times y = x·Wᵀ + b through `Tensor.linear` and the bare sgemm on the same operands.
    public static func run(shape: GemmShape, threads: Int, repeats: Int = 7) -> GemmBenchmarkRow {
        Runtime.setThreads(threads)
        var rng = RandomGenerator(seed: 1)
        let x = Tensor.uniform([shape.m, shape.k], low: -1, high: 1, using: &rng)
        let w = Tensor.uniform([shape.n, shape.k], low: -1, high: 1, using: &rng)
        let b = Tensor.uniform([shape.n], low: -1, high: 1, using: &rng)
        let out = Tensor.zeros([shape.m, shape.n])
        // Interleave the two so drift in machine speed hits both alike.
        var raw: [Double] = [], engine: [Double] = []
        for round in 0..<(repeats + 2) {
            let r = Stopwatch.measure(warmup: 0, repeats: 1) {
                BLAS.sgemm(transposeA: false, transposeB: true, m: shape.m, n: shape.n, k: shape.k,
                           a: x.data, lda: shape.k, b: w.data, ldb: shape.k, beta: 0, c: out.data, ldc: shape.n)
            }
            let e = Stopwatch.measure(warmup: 0, repeats: 1) {
                _ = Autograd.withNoGrad { x.linear(w, bias: b) }
            }
            if round >= 2 { raw.append(r.median); engine.append(e.median) } // two warm-up rounds
        }
        let rawTime = TimingSummary(seconds: raw).median, engineTime = TimingSummary(seconds: engine).median
        return GemmBenchmarkRow(shape: shape, threads: threads, rawGflops: shape.flops / rawTime / 1e9,
                                engineGflops: shape.flops / engineTime / 1e9)
    }
}
