// Reshape: the same storage under a new shape (no copy); the gradient passes through unchanged.

extension Tensor {
    /// A view with `newShape` (one entry may be -1: inferred). Shares storage with self.
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let hole = target.firstIndex(of: -1) {
            let known = target.enumerated().filter { $0.offset != hole }.reduce(1) { $0 * $1.element }
            precondition(known > 0 && count % known == 0, "reshape: cannot infer -1 in \(newShape) for \(shape)")
            target[hole] = count / known
        }
        precondition(target.elementCount == count, "reshape: \(shape) (\(count) elements) to \(newShape)")
        let x = self
        let y = Tensor(shape: target, storage: storage)
        y.record("reshape", [x]) { gy in x.accumulateGrad(gy) }
        return y
    }
}
