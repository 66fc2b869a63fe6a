// Accuracy of the C kernels' vectorised math (ak_expf, ak_erff, ak_tanhf in mathfun.h) against the
// C library in double precision, through the exported kernels.
import AdaTensor
import AdaTestSupport
import CKernels
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@Suite("C math kernels")
struct MathKernelTests {
    /// Evenly spaced float inputs over [low, high] (both ends included).
    static func grid(_ low: Double, _ high: Double, count: Int) -> [Float] {
        (0..<count).map { Float(low + (high - low) * Double($0) / Double(count - 1)) }
    }

    /// max |actual − reference| and max |actual − reference| / |reference| over the grid.
    static func errors(_ actual: [Float], _ reference: [Double]) -> (absolute: Double, relative: Double, at: Int) {
        var absolute = 0.0, relative = 0.0, at = -1
        for i in 0..<actual.count {
            let e = Swift.abs(Double(actual[i]) - reference[i])
            if e.isNaN { return (.infinity, .infinity, i) }
            if e > absolute { absolute = e }
            let r = e / Swift.max(Swift.abs(reference[i]), 1e-300)
            if r > relative { relative = r; at = i }
        }
        return (absolute, relative, at)
    }

    /// Runs a one-input C kernel `f(x, y, n)` over `x`.
    static func apply(_ f: (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void, _ x: [Float]) -> [Float] {
        var y = [Float](repeating: .nan, count: x.count)
        x.withUnsafeBufferPointer { px in y.withUnsafeMutableBufferPointer { py in f(px.baseAddress, py.baseAddress, x.count) } }
        return y
    }

    @Test func expMatchesLibm() {
        let x = Self.grid(-80, 80, count: 320_001) + [0, 1, -1, 1e-8, -1e-8, 88, -87]
        let e = Self.errors(Self.apply(ak_exp, x), x.map { exp(Double($0)) })
        #expect(e.relative <= 1e-6, "exp: max relative error \(e.relative) at x = \(x[Swift.max(e.at, 0)])")
    }

    /// The attention kernel's softmax exponentials (base-2, no Cody–Waite step): relative error within
    /// 3e-7 + 5e-8·|t| (t = (x − m)·log2 e), the row's sum as returned, and ~0 far below the maximum.
    @Test func attentionExponentialsMatchLibm() {
        guard ak_attention_supports(64) != 0 else { return } // BLAS + softmax.c serve attention there (covered above)
        let m: Float = 3.5
        var row = Self.grid(-60, 3.5, count: 100_003) + [m, m - 1e-6, -200, -1000] // shifts below e^-87 clamp to ~0
        let reference = row.map { exp(Double($0) - Double(m)) }
        let sum = row.withUnsafeMutableBufferPointer { ak_attention_exp_sum($0.baseAddress, $0.count, m) }
        var worst = 0.0, worstRelative = 0.0, worstT = 0.0
        for (i, r) in reference.enumerated() where r > 1e-30 {
            let t = Swift.abs(log2(r)), relative = Swift.abs(Double(row[i]) - r) / r
            let ratio = relative / (3e-7 + 5e-8 * t)
            if ratio > worst { worst = ratio; worstRelative = relative; worstT = t }
        }
        #expect(worst <= 1, "relative error \(worstRelative) at |t| = \(worstT): \(worst) × the bound")
        #expect(row.suffix(2).allSatisfy { $0 < 1e-37 })
        let exactSum = reference.reduce(0, +)
        #expect(Swift.abs(Double(sum) - exactSum) <= 1e-5 * exactSum, "sum \(sum) vs \(exactSum)")
    }

    @Test func sigmoidMatchesLibm() {
        let x = Self.grid(-80, 80, count: 320_001)
        let e = Self.errors(Self.apply(ak_sigmoid, x), x.map { 1 / (1 + exp(-Double($0))) })
        #expect(e.relative <= 1e-6, "sigmoid: max relative error \(e.relative) at x = \(x[Swift.max(e.at, 0)])")
    }

    /// Exact GELU x·Φ(x) against libm's erf in double: checks ak_erff on both sides of its |x| = 0.5 switch.
    @Test func geluErfMatchesLibm() {
        let x = Self.grid(-8, 8, count: 160_001) + [0.4999999, 0.5, 0.5000001, -0.5, 1e-6, -1e-6]
        let reference = x.map { Double($0) * 0.5 * (1 + erf(Double($0) / 2.0.squareRoot())) }
        let kernel = Self.errors(Self.apply(ak_gelu_erf_forward, x), reference)
        #expect(kernel.absolute <= 2e-6, "ak_gelu_erf_forward: max |Δ| = \(kernel.absolute)")
        let op = Self.errors(Tensor(x).gelu().values, reference) // the same through the Tensor op (threaded)
        #expect(op.absolute <= 2e-6, "gelu(): max |Δ| = \(op.absolute)")
    }

    @Test func geluTanhMatchesLibm() {
        let x = Self.grid(-8, 8, count: 160_001) + [0.0625, -0.0625, 1e-6]
        let reference = x.map { v -> Double in
            let d = Double(v)
            return 0.5 * d * (1 + tanh((2 / Double.pi).squareRoot() * (d + 0.044715 * d * d * d)))
        }
        let e = Self.errors(Tensor(x).gelu(approximation: .tanh).values, reference)
        #expect(e.absolute <= 2e-6, "gelu tanh: max |Δ| = \(e.absolute)")
    }

    /// The derivatives Φ(x) + x·φ(x) and the tanh form's, against double precision (gx accumulates from 0).
    @Test func geluDerivativesMatchLibm() {
        let x = Self.grid(-8, 8, count: 16_001)
        let ones = [Float](repeating: 1, count: x.count)
        func derivative(_ f: (UnsafePointer<Float>?, UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int) -> Void) -> [Float] {
            var gx = [Float](repeating: 0, count: x.count)
            x.withUnsafeBufferPointer { px in ones.withUnsafeBufferPointer { pg in gx.withUnsafeMutableBufferPointer { out in
                f(px.baseAddress, pg.baseAddress, out.baseAddress, x.count)
            } } }
            return gx
        }
        let exact = x.map { v -> Double in
            let d = Double(v)
            return 0.5 * (1 + erf(d / 2.0.squareRoot())) + d * exp(-0.5 * d * d) / (2 * Double.pi).squareRoot()
        }
        let tanhForm = x.map { v -> Double in
            let d = Double(v), k = (2 / Double.pi).squareRoot()
            let t = tanh(k * (d + 0.044715 * d * d * d))
            return 0.5 * (1 + t) + 0.5 * d * (1 - t * t) * k * (1 + 3 * 0.044715 * d * d)
        }
        let e1 = Self.errors(derivative(ak_gelu_erf_backward), exact)
        let e2 = Self.errors(derivative(ak_gelu_tanh_backward), tanhForm)
        #expect(e1.absolute <= 5e-6, "GELU′: max |Δ| = \(e1.absolute)")
        #expect(e2.absolute <= 5e-6, "GELU_tanh′: max |Δ| = \(e2.absolute)")
    }
}
