// Closeness checks shared by the test targets (they return a report; tests #expect on it).
import AdaTensor

public struct Closeness: CustomStringConvertible {
    public let maxAbsoluteError: Double
    public let maxReference: Double
    public let bound: Double
    public let worstIndex: Int
    public var passed: Bool { maxAbsoluteError <= bound }
    public var relative: Double { maxAbsoluteError / max(maxReference, 1e-30) }
    public var description: String {
        "max|Δ| = \(maxAbsoluteError) (bound \(bound), max|ref| = \(maxReference), rel \(relative)) at \(worstIndex)"
    }
}

/// max|actual − expected| ≤ rtol·max|expected| + atol — the fixtures' per-tensor criterion.
public func compare(_ actual: [Float], _ expected: [Float], rtol: Double, atol: Double) -> Closeness {
    precondition(actual.count == expected.count, "compare: \(actual.count) vs \(expected.count) values")
    var maxErr = 0.0, maxRef = 0.0, worst = -1
    for i in 0..<actual.count {
        let e = Swift.abs(Double(actual[i]) - Double(expected[i]))
        if e > maxErr || e.isNaN { maxErr = e.isNaN ? .infinity : e; worst = i }
        maxRef = max(maxRef, Swift.abs(Double(expected[i])))
    }
    return Closeness(maxAbsoluteError: maxErr, maxReference: maxRef, bound: rtol * maxRef + atol, worstIndex: worst)
}

public func compare(_ actual: Tensor, _ expected: Tensor, rtol: Double, atol: Double) -> Closeness {
    precondition(actual.count == expected.count, "compare: shapes \(actual.shape) vs \(expected.shape)")
    return compare(actual.values, expected.values, rtol: rtol, atol: atol)
}
