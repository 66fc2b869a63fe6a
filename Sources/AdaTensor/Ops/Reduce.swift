// Sums and means over axes; the backward broadcasts the output gradient back over the reduced axes.

extension Tensor {
    /// Σ over every element → shape [].
    public func sum() -> Tensor {
        let x = self
        let chunkCount = Swift.min(Runtime.threads, Swift.max(1, count / 65536))
        let partial = Storage(zeroedCount: chunkCount)
        Parallel.forEach(chunkCount) { c in
            let start = x.count * c / chunkCount, end = x.count * (c + 1) / chunkCount
            partial.pointer[c] = Vector.sum(x.data + start, count: end - start)
        }
        let y = Tensor.scalar((0..<chunkCount).reduce(0) { $0 + partial.pointer[$1] })
        y.record("sum", [x]) { gy in
            let g = gy.data[0]
            x.accumulateGrad { gx in for i in 0..<x.count { gx[i] += g } }
        }
        return y
    }

    /// Mean of every element → shape [].
    public func mean() -> Tensor { sum() * (1 / Float(Swift.max(count, 1))) }

    /// Σ over the given axes (negative axes count from the end).
    public func sum(axes: [Int], keepDims: Bool = false) -> Tensor {
        reduce(axes: axes, keepDims: keepDims, scale: 1, name: "sum_axes")
    }

    /// Mean over the given axes (e.g. the token mean `x.mean(axes: [1])` of [B, L, D]).
    public func mean(axes: [Int], keepDims: Bool = false) -> Tensor {
        let size = normalizedAxes(axes).reduce(1) { $0 * shape[$1] }
        return reduce(axes: axes, keepDims: keepDims, scale: 1 / Float(Swift.max(size, 1)), name: "mean_axes")
    }

    func normalizedAxes(_ axes: [Int]) -> [Int] {
        let result = Set(axes.map { axis -> Int in
            let a = axis < 0 ? axis + rank : axis
            precondition(a >= 0 && a < rank, "axis \(axis) out of range for shape \(shape)")
            return a
        })
        return result.sorted()
    }

    private func reduce(axes: [Int], keepDims: Bool, scale: Float, name: String) -> Tensor {
        let x = self
        let reduced = normalizedAxes(axes)
        let keptShape = shape.enumerated().map { reduced.contains($0.offset) ? 1 : $0.element }
        let outShape = keepDims ? keptShape : shape.enumerated().filter { !reduced.contains($0.offset) }.map(\.element)
        let y = Tensor.zeros(outShape)
        // Accumulate through the broadcast machinery: y (shape keptShape) is the reduction target.
        Broadcast.addReduced(x.data, from: shape, into: y.data, target: keptShape)
        if scale != 1 { Vector.scale(y.data, by: scale, count: y.count) }
        y.record(name, [x]) { gy in
            x.accumulateGrad { gx in
                // gx += scale · broadcast(gy) over the reduced axes
                let sx = Broadcast.strides(of: keptShape, in: x.shape)
                let zero = [Int](repeating: 0, count: x.rank)
                Broadcast.forEachRow(x.shape, sx, zero) { o, og, _, n, step, _ in
                    for j in 0..<n { gx[o + j] += scale * gy.data[og + j * step] }
                }
            }
        }
        return y
    }
}
