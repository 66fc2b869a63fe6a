// NumPy broadcasting: shapes align at the trailing axis; a size-1 (or missing) axis repeats.

public enum Broadcast {
    /// The broadcast result shape, or nil when the shapes are incompatible.
    public static func shape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var out = [Int](repeating: 1, count: rank)
        for i in 0..<rank {
            let da = i < rank - a.count ? 1 : a[i - (rank - a.count)]
            let db = i < rank - b.count ? 1 : b[i - (rank - b.count)]
            guard da == db || da == 1 || db == 1 else { return nil }
            out[i] = da == 1 ? db : da
        }
        return out
    }

    /// Element strides of `shape` viewed in the (larger) shape `out`: 0 along repeated axes.
    public static func strides(of shape: [Int], in out: [Int]) -> [Int] {
        var strides = [Int](repeating: 0, count: out.count)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            let o = i + out.count - shape.count
            strides[o] = shape[i] == 1 && out[o] != 1 ? 0 : step
            step *= shape[i]
        }
        return strides
    }

    /// Calls `body(outOffset, aOffset, bOffset, n, aStep, bStep)` for every run of the last axis of
    /// `out`, where a and b are read with the given broadcast strides. Rows are split over threads.
    @inline(__always)
    static func forEachRow(_ out: [Int], _ sa: [Int], _ sb: [Int],
                           _ body: (Int, Int, Int, Int, Int, Int) -> Void) {
        let rank = out.count
        guard rank > 0 else { body(0, 0, 0, 1, 0, 0); return }
        let n = out[rank - 1], rows = out.elementCount / max(n, 1)
        guard n > 0, rows > 0 else { return }
        let aStep = sa[rank - 1], bStep = sb[rank - 1]
        Parallel.chunks(rows, minimumChunk: max(1, 32768 / n)) { range in
            for row in range {
                var rest = row, oa = 0, ob = 0
                for axis in stride(from: rank - 2, through: 0, by: -1) {
                    let i = rest % out[axis]
                    rest /= out[axis]
                    oa += i * sa[axis]
                    ob += i * sb[axis]
                }
                body(row * n, oa, ob, n, aStep, bStep)
            }
        }
    }

    /// Sums `g` (shaped `from`) down to `target` (a shape that broadcasts to `from`) and adds the result
    /// into `dst`. Threads would collide on the reduced axes, so each sums its rows into a private copy of
    /// a small target (a per-channel parameter), and the copies are added in slot order: deterministic
    /// for a given thread count. Large targets are reduced on one thread.
    static func addReduced(_ g: UnsafePointer<Float>, from: [Int], into dst: UnsafeMutablePointer<Float>, target: [Int]) {
        let total = from.elementCount
        if from == target {
            Parallel.chunks(total, minimumChunk: 32768) { r in Vector.add(g + r.lowerBound, into: dst + r.lowerBound, count: r.count) }
            return
        }
        let rank = from.count
        let st = strides(of: target, in: from)
        let n = rank == 0 ? 1 : from[rank - 1]
        let rows = total / max(n, 1)
        guard n > 0 else { return }
        let step = rank == 0 ? 0 : st[rank - 1]
        func accumulate(_ range: Range<Int>, into out: UnsafeMutablePointer<Float>) {
            for row in range {
                var rest = row, o = 0
                for axis in stride(from: rank - 2, through: 0, by: -1) {
                    o += (rest % from[axis]) * st[axis]
                    rest /= from[axis]
                }
                let src = g + row * n
                switch step {
                case 0: out[o] += Vector.sum(src, count: n)
                case 1: Vector.add(src, into: out + o, count: n)
                default: for j in 0..<n { out[o + j * step] += src[j] }
                }
            }
        }
        let targetCount = target.elementCount, threads = Runtime.threads
        guard threads > 1, total >= 65536, targetCount <= 65536 else { accumulate(0..<rows, into: dst); return }
        let partial = Storage(zeroedCount: threads * targetCount)
        Parallel.indexedChunks(rows, slots: threads, minimumChunk: Swift.max(1, 16384 / n)) { slot, range in
            accumulate(range, into: partial.pointer + slot * targetCount)
        }
        for slot in 0..<threads { Vector.add(partial.pointer + slot * targetCount, into: dst, count: targetCount) }
    }
}
