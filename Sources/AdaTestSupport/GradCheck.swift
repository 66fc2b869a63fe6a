// Finite-difference gradient checking for the engine's ops.
//
// The op's output y is reduced to a scalar L = Σ yᵢ·Rᵢ with a fixed random R (so every output element
// matters), accumulated in Double. The analytic dL/dx from backward() is compared with the central
// difference (L(x + h) − L(x − h)) / 2h for every input element.
//
// Tolerances, and why: the forward runs in float32, so L carries a relative rounding error of about
// 1e-7·Σ|yᵢRᵢ|; divided by 2h (h = 1e-2) that is ≈ 5e-6·Σ|yᵢRᵢ| of noise, while the central difference's
// truncation error is O(h²·f‴) ≈ 1e-4 relative for unit-scale inputs. We therefore require, per element,
// |num − ana| ≤ atol + rtol·max(|num|, |ana|) with rtol = 1e-2, atol = 1e-3·(1 + max|ana|), and for the
// whole tensor ‖num − ana‖ ≤ 1e-2·‖ana‖ + atol. A wrong backward is off by O(1) relative.
import AdaTensor

public struct GradCheckReport: CustomStringConvertible {
    public var passed = true
    public var worst: (input: Int, index: Int, numeric: Double, analytic: Double)? = nil
    public var maxError = 0.0
    public var checked = 0
    public var notes: [String] = []

    public var description: String {
        var text = "grad check \(passed ? "passed" : "FAILED"): \(checked) elements, max |Δ| = \(maxError)"
        if let w = worst { text += "; worst input \(w.input)[\(w.index)] numeric \(w.numeric) analytic \(w.analytic)" }
        if !notes.isEmpty { text += "\n" + notes.joined(separator: "\n") }
        return text
    }
}

public enum GradCheck {
    /// Checks d(Σ f(inputs)·R)/d(inputs[i]) for every input with `requiresGrad` set.
    /// `f` must be deterministic (seed any randomness inside it).
    public static func run(_ inputs: [Tensor], step h: Float = 1e-2, rtol: Double = 1e-2, atol: Double = 1e-3,
                           seed: UInt64 = 7, _ f: ([Tensor]) -> Tensor) -> GradCheckReport {
        var report = GradCheckReport()
        for t in inputs { t.grad = nil }
        let probe = f(inputs)
        var rng = RandomGenerator(seed: seed)
        let weights = Tensor.uniform(probe.shape, low: -1, high: 1, using: &rng)
        func loss(_ y: Tensor) -> Double {
            var s = 0.0
            for i in 0..<y.count { s += Double(y.data[i]) * Double(weights.data[i]) }
            return s
        }
        // Analytic: backward of Σ y·R, i.e. seed the output gradient with R.
        probe.backward(gradient: weights)

        for (which, x) in inputs.enumerated() where x.requiresGrad {
            guard let analytic = x.grad else {
                report.passed = false
                report.notes.append("input \(which) \(x.shape): backward produced no gradient")
                continue
            }
            let maxAnalytic = (0..<x.count).map { Swift.abs(Double(analytic.data[$0])) }.max() ?? 0
            let tol = atol * (1 + maxAnalytic)
            var diffNorm = 0.0, refNorm = 0.0
            for i in 0..<x.count {
                let saved = x.data[i]
                x.data[i] = saved + h
                let plus = Autograd.withNoGrad { loss(f(inputs)) }
                x.data[i] = saved - h
                let minus = Autograd.withNoGrad { loss(f(inputs)) }
                x.data[i] = saved
                let numeric = (plus - minus) / (2 * Double(h))
                let ana = Double(analytic.data[i])
                let err = Swift.abs(numeric - ana)
                diffNorm += err * err
                refNorm += ana * ana
                report.checked += 1
                if err > report.maxError { report.maxError = err; report.worst = (which, i, numeric, ana) }
                if err > tol + rtol * max(Swift.abs(numeric), Swift.abs(ana)) {
                    report.passed = false
                }
            }
            if diffNorm.squareRoot() > 1e-2 * refNorm.squareRoot() + tol {
                report.passed = false
                report.notes.append("input \(which): ‖Δ‖ = \(diffNorm.squareRoot()) vs ‖ana‖ = \(refNorm.squareRoot())")
            }
        }
        for t in inputs { t.grad = nil }
        return report
    }
}
