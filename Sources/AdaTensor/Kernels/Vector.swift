// Small contiguous-vector kernels in Swift. Float reductions are never auto-vectorised without
// fast-math, so the sums use explicit SIMD accumulators.

public enum Vector {
    /// dst[i] += src[i]
    @inline(__always)
    public static func add(_ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { dst[i] += src[i] }
    }

    /// dst[i] += alpha · src[i]
    @inline(__always)
    public static func axpy(_ alpha: Float, _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>,
                            count: Int) {
        for i in 0..<count { dst[i] += alpha * src[i] }
    }

    @inline(__always)
    public static func scale(_ x: UnsafeMutablePointer<Float>, by alpha: Float, count: Int) {
        for i in 0..<count { x[i] *= alpha }
    }

    /// Σ x[i]: 16 float lanes over blocks of 4096 values, block sums added in Double, so the error
    /// stays at a few ulp even for millions of values.
    @inline(__always)
    public static func sum(_ x: UnsafePointer<Float>, count: Int) -> Float {
        let raw = UnsafeRawPointer(x)
        var total = 0.0
        var i = 0
        while i < count {
            let end = Swift.min(count, i + 4096)
            var acc = SIMD16<Float>.zero
            while i + 16 <= end {
                acc += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                i += 16
            }
            var block = Double(acc.sum())
            while i < end { block += Double(x[i]); i += 1 }
            total += block
        }
        return Float(total)
    }

    /// Σ x[i]·y[i]
    @inline(__always)
    public static func dot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, count: Int) -> Float {
        var acc = SIMD16<Float>.zero
        var i = 0
        let rx = UnsafeRawPointer(x), ry = UnsafeRawPointer(y)
        while i + 16 <= count {
            acc += rx.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
                * ry.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self)
            i += 16
        }
        var total = acc.sum()
        while i < count { total += x[i] * y[i]; i += 1 }
        return total
    }

    /// dst[j] += Σ_rows src[r, j]: column sums of a rows × cols matrix, split over threads by
    /// column blocks so no two threads write the same element.
    public static func addColumnSums(_ src: UnsafePointer<Float>, rows: Int, cols: Int,
                                     into dst: UnsafeMutablePointer<Float>) {
        Parallel.chunks(cols, minimumChunk: max(64, 65536 / max(rows, 1))) { range in
            for r in 0..<rows {
                let row = src + r * cols
                for j in range { dst[j] += row[j] }
            }
        }
    }
}
