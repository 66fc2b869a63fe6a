// Shape ops that move data: permute/transpose, concat, split/slice, broadcast-expand. Each one is a
// copy; the backward moves the gradient back along the same map (and sums over repeats for expand).
//
// Legend: B batch, N tokens, C channels, D embedding width; axis a of rank r may be given as a − r.
//
// All of them reduce to one kernel, `StridedCopy`: visit every index of a box `dims`, reading
// src[Σ i·srcStride] and writing (or adding to) dst[Σ i·dstStride]. It first merges axes that are
// contiguous in both layouts, then picks the fastest loop for what is left:
//   • rows that are contiguous on both sides → memcpy / vector add (slices, concat, most permutes);
//   • an axis contiguous in dst but strided in src, with another axis contiguous in src → a tiled
//     transpose with 8×8 register transposes ([B, N, C] ↔ [B, C, N], HWC ↔ CHW, and every permutation
//     that moves the last axis);
//   • anything else → strided rows (broadcast fills, sources without a contiguous axis).

extension Tensor {
    /// Copy with the axes reordered: result axis i is input axis `axes[i]` (a permutation of 0..<rank,
    /// negative entries count from the end). The gradient is permuted back.
    public func permuted(_ axes: [Int]) -> Tensor {
        let x = self
        precondition(axes.count == rank, "permuted: \(axes) is not a permutation of the axes of \(shape)")
        let order = axes.map { StridedCopy.normalizedAxis($0, rank: rank, op: "permuted", shape: shape) }
        precondition(Set(order).count == rank, "permuted: \(axes) repeats an axis of \(shape)")
        let outShape = order.map { shape[$0] }
        let inStrides = StridedCopy.contiguousStrides(shape), outStrides = StridedCopy.contiguousStrides(outShape)
        let y = Tensor(uninitializedShape: outShape)
        StridedCopy.run(dims: outShape, from: x.data, strides: order.map { inStrides[$0] },
                        to: y.data, strides: outStrides, accumulate: false)
        y.record("permute", [x]) { gy in
            x.accumulateGrad { gx in
                // Walk gx in its own (contiguous) order; input axis order[i] reads gy with stride outStrides[i].
                var gyStrides = [Int](repeating: 0, count: outStrides.count)
                for (i, axis) in order.enumerated() { gyStrides[axis] = outStrides[i] }
                StridedCopy.run(dims: x.shape, from: gy.data, strides: gyStrides, to: gx, strides: inStrides,
                                accumulate: true)
            }
        }
        return y
    }

    /// Copy with axes `a` and `b` swapped (e.g. `transposed(-2, -1)`: [B, N, C] → [B, C, N]).
    public func transposed(_ a: Int, _ b: Int) -> Tensor {
        let i = StridedCopy.normalizedAxis(a, rank: rank, op: "transposed", shape: shape)
        let j = StridedCopy.normalizedAxis(b, rank: rank, op: "transposed", shape: shape)
        var order = Array(0..<rank)
        order.swapAt(i, j)
        return permuted(order)
    }

    /// Joins tensors along `axis`; every other dimension must agree. Each input that needs a gradient
    /// receives its slice of the output gradient.
    public static func concat(_ tensors: [Tensor], axis: Int) -> Tensor {
        precondition(!tensors.isEmpty, "concat: no tensors")
        let first = tensors[0]
        precondition(first.rank >= 1, "concat: cannot concatenate rank-0 tensors")
        let ax = StridedCopy.normalizedAxis(axis, rank: first.rank, op: "concat", shape: first.shape)
        var outShape = first.shape
        outShape[ax] = 0
        var offsets: [Int] = []
        for t in tensors {
            precondition(t.rank == first.rank && (0..<t.rank).allSatisfy { $0 == ax || t.shape[$0] == first.shape[$0] },
                         "concat along axis \(axis): shapes \(tensors.map(\.shape)) differ outside that axis")
            offsets.append(outShape[ax])
            outShape[ax] += t.shape[ax]
        }
        let outStrides = StridedCopy.contiguousStrides(outShape)
        let y = Tensor(uninitializedShape: outShape)
        for (t, offset) in zip(tensors, offsets) {
            StridedCopy.run(dims: t.shape, from: t.data, strides: StridedCopy.contiguousStrides(t.shape),
                            to: y.data + offset * outStrides[ax], strides: outStrides, accumulate: false)
        }
        y.record("concat", tensors) { gy in
            for (t, offset) in zip(tensors, offsets) {
                t.accumulateGrad { gt in
                    StridedCopy.run(dims: t.shape, from: gy.data + offset * outStrides[ax], strides: outStrides,
                                    to: gt, strides: StridedCopy.contiguousStrides(t.shape), accumulate: true)
                }
            }
        }
        return y
    }

    /// Copy of the entries `range` along `axis` (e.g. the CLS token `x.slice(axis: 1, range: 0..<1)` of
    /// [B, 1 + N, D]). The gradient is added into that region of the input's gradient.
    public func slice(axis: Int, range: Range<Int>) -> Tensor {
        let x = self
        let ax = StridedCopy.normalizedAxis(axis, rank: rank, op: "slice", shape: shape)
        precondition(range.lowerBound >= 0 && range.upperBound <= shape[ax],
                     "slice: range \(range) out of bounds for axis \(axis) of \(shape)")
        var outShape = shape
        outShape[ax] = range.count
        let inStrides = StridedCopy.contiguousStrides(shape)
        let start = range.lowerBound * inStrides[ax]
        let y = Tensor(uninitializedShape: outShape)
        StridedCopy.run(dims: outShape, from: x.data + start, strides: inStrides,
                        to: y.data, strides: StridedCopy.contiguousStrides(outShape), accumulate: false)
        y.record("slice", [x]) { gy in
            x.accumulateGrad { gx in
                StridedCopy.run(dims: outShape, from: gy.data, strides: StridedCopy.contiguousStrides(outShape),
                                to: gx + start, strides: inStrides, accumulate: true)
            }
        }
        return y
    }

    /// Consecutive slices along `axis` with the given sizes (which must add up to the axis length).
    public func split(sizes: [Int], axis: Int) -> [Tensor] {
        let ax = StridedCopy.normalizedAxis(axis, rank: rank, op: "split", shape: shape)
        precondition(sizes.allSatisfy { $0 >= 0 } && sizes.reduce(0, +) == shape[ax],
                     "split: sizes \(sizes) do not add up to \(shape[ax]) (axis \(axis) of \(shape))")
        var start = 0
        return sizes.map { size in
            defer { start += size }
            return slice(axis: ax, range: start..<start + size)
        }
    }

    /// Broadcast copy to `target` (NumPy rules: align trailing axes; size-1 or missing axes repeat).
    /// The gradient is summed over the repeated axes.
    public func expanded(to target: [Int]) -> Tensor {
        let x = self
        precondition(target.count >= rank && Broadcast.shape(shape, target) == target,
                     "expanded: \(shape) does not broadcast to \(target)")
        let y = Tensor(uninitializedShape: target)
        StridedCopy.run(dims: target, from: x.data, strides: Broadcast.strides(of: shape, in: target),
                        to: y.data, strides: StridedCopy.contiguousStrides(target), accumulate: false)
        y.record("expand", [x]) { gy in
            x.accumulateGrad { gx in Broadcast.addReduced(gy.data, from: target, into: gx, target: x.shape) }
        }
        return y
    }
}

/// Strided box copy: the shared kernel of the shape ops (see the header comment).
enum StridedCopy {
    /// Row-major element strides of a contiguous tensor of `shape`.
    static func contiguousStrides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var step = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            strides[i] = step
            step *= shape[i]
        }
        return strides
    }

    static func normalizedAxis(_ axis: Int, rank: Int, op: String, shape: [Int]) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < rank, "\(op): axis \(axis) out of range for shape \(shape)")
        return a
    }

    /// Elements per tile of the blocked transpose: 64×64 floats = 16 KB per side, in L1/L2.
    static let tileArea = 4096
    /// Below this many elements a copy stays on one thread (spawning costs more than it saves).
    static let parallelGrain = 1 << 16

    /// For every index i of the box `dims`: dst[i·dstStrides] = (or +=) src[i·srcStrides].
    /// dst must not overlap itself (each element written once), which makes the threads' writes disjoint.
    static func run(dims: [Int], from src: UnsafePointer<Float>, strides srcStrides: [Int],
                    to dst: UnsafeMutablePointer<Float>, strides dstStrides: [Int], accumulate: Bool) {
        precondition(dims.count == srcStrides.count && dims.count == dstStrides.count,
                     "StridedCopy: dims \(dims), strides \(srcStrides) / \(dstStrides) differ in rank")
        if dims.contains(0) { return }
        // Drop size-1 axes, then merge neighbours that are contiguous in both layouts.
        var d: [Int] = [], s: [Int] = [], t: [Int] = []
        for i in 0..<dims.count where dims[i] != 1 {
            if let last = d.indices.last, s[last] == srcStrides[i] * dims[i], t[last] == dstStrides[i] * dims[i] {
                d[last] *= dims[i]; s[last] = srcStrides[i]; t[last] = dstStrides[i]
            } else {
                d.append(dims[i]); s.append(srcStrides[i]); t.append(dstStrides[i])
            }
        }
        if d.isEmpty {
            if accumulate { dst[0] += src[0] } else { dst[0] = src[0] }
            return
        }
        // The inner axis walks dst in its smallest steps (the last one on ties: sequential writes).
        let inner = d.indices.reversed().min { t[$0] < t[$1] }!
        if t[inner] == 1 && s[inner] > 1, let across = s.indices.last(where: { s[$0] == 1 }),
           d[inner] * d[across] >= 64 {
            transposeBlocks(d, s, t, rowAxis: inner, columnAxis: across, src, dst, accumulate)
            return
        }
        rows(d, s, t, inner: inner, src, dst, accumulate)
    }

    /// Offsets of the flat index `index` over the axes `dims` (row-major) in both layouts.
    @inline(__always)
    private static func offsets(of index: Int, _ dims: [Int], _ s: [Int], _ t: [Int]) -> (Int, Int) {
        var rest = index, so = 0, to = 0
        for axis in stride(from: dims.count - 1, through: 0, by: -1) {
            let i = rest % dims[axis]
            rest /= dims[axis]
            so += i * s[axis]
            to += i * t[axis]
        }
        return (so, to)
    }

    /// One run of `n` elements: src step `ss`, dst step `ds`.
    @inline(__always)
    private static func segment(_ src: UnsafePointer<Float>, _ ss: Int, _ dst: UnsafeMutablePointer<Float>, _ ds: Int,
                                _ n: Int, _ accumulate: Bool) {
        switch (ss, ds, accumulate) {
        case (1, 1, false): dst.update(from: src, count: n)
        case (1, 1, true): Vector.add(src, into: dst, count: n)
        case (0, 1, false): dst.update(repeating: src[0], count: n)
        case (0, 1, true): let v = src[0]; for j in 0..<n { dst[j] += v }
        case (_, 1, false): for j in 0..<n { dst[j] = src[j * ss] }
        case (_, 1, true): for j in 0..<n { dst[j] += src[j * ss] }
        case (_, _, false): for j in 0..<n { dst[j * ds] = src[j * ss] }
        case (_, _, true): for j in 0..<n { dst[j * ds] += src[j * ss] }
        }
    }

    /// Loop over every axis but `inner`, copying one run along `inner` per step.
    private static func rows(_ d: [Int], _ s: [Int], _ t: [Int], inner: Int,
                             _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ accumulate: Bool) {
        let n = d[inner], ss = s[inner], ds = t[inner]
        let outerAxes = d.indices.filter { $0 != inner }
        let od = outerAxes.map { d[$0] }, os = outerAxes.map { s[$0] }, ot = outerAxes.map { t[$0] }
        let rowCount = od.reduce(1, *)
        let outer = od.count
        // Few long rows (a slice of a big tensor along axis 0): split each row into pieces instead.
        let pieces = rowCount >= 8 ? 1 : max(1, n / parallelGrain)
        if pieces > 1 {
            Parallel.forEach(rowCount * pieces) { unit in
                let (so, to) = offsets(of: unit / pieces, od, os, ot)
                let piece = unit % pieces
                let lo = n * piece / pieces, hi = n * (piece + 1) / pieces
                segment(src + so + lo * ss, ss, dst + to + lo * ds, ds, hi - lo, accumulate)
            }
            return
        }
        Parallel.chunks(rowCount, minimumChunk: max(1, parallelGrain / n)) { range in
            var (so, to) = offsets(of: range.lowerBound, od, os, ot)
            // Odometer over the outer axes: no divisions per row.
            withUnsafeTemporaryAllocation(of: Int.self, capacity: max(outer, 1)) { counter in
                var rest = range.lowerBound
                for axis in stride(from: outer - 1, through: 0, by: -1) {
                    counter[axis] = rest % od[axis]
                    rest /= od[axis]
                }
                od.withUnsafeBufferPointer { od in os.withUnsafeBufferPointer { os in ot.withUnsafeBufferPointer { ot in
                    for _ in range {
                        segment(src + so, ss, dst + to, ds, n, accumulate)
                        var axis = outer - 1
                        while axis >= 0 {
                            counter[axis] += 1
                            so += os[axis]; to += ot[axis]
                            if counter[axis] < od[axis] { break }
                            so -= os[axis] * od[axis]; to -= ot[axis] * od[axis]
                            counter[axis] = 0
                            axis -= 1
                        }
                    }
                } } }
            }
        }
    }

    /// The transpose case: along `rowAxis` dst is contiguous (src strided), along `columnAxis` src is
    /// contiguous (dst strided). Works tile by tile, 8×8 blocks through registers, parallel over
    /// (other axes × tiles).
    private static func transposeBlocks(_ d: [Int], _ s: [Int], _ t: [Int], rowAxis: Int, columnAxis: Int,
                                        _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>,
                                        _ accumulate: Bool) {
        let rows = d[rowAxis], columns = d[columnAxis]
        let srcRowStride = s[rowAxis], dstColumnStride = t[columnAxis]
        let batchAxes = d.indices.filter { $0 != rowAxis && $0 != columnAxis }
        let bd = batchAxes.map { d[$0] }, bs = batchAxes.map { s[$0] }, bt = batchAxes.map { t[$0] }
        let batch = bd.reduce(1, *)
        // Square 64×64 tiles; when one side is short (3 channels) the other grows to keep the area.
        var rowTile = Swift.min(rows, 64)
        let columnTile = Swift.min(columns, tileArea / rowTile)
        if columnTile < 64 { rowTile = Swift.min(rows, tileArea / columnTile) }
        let rowTiles = (rows + rowTile - 1) / rowTile, columnTiles = (columns + columnTile - 1) / columnTile
        let units = batch * rowTiles * columnTiles
        let unitSize = rowTile * columnTile
        Parallel.chunks(units, minimumChunk: max(1, parallelGrain / unitSize)) { range in
            for unit in range {
                let columnIndex = unit % columnTiles, rowIndex = (unit / columnTiles) % rowTiles
                let (so, to) = offsets(of: unit / (columnTiles * rowTiles), bd, bs, bt)
                let r0 = rowIndex * rowTile, c0 = columnIndex * columnTile
                transposeTile(src + so + r0 * srcRowStride + c0, srcRowStride,
                              dst + to + c0 * dstColumnStride + r0, dstColumnStride,
                              rows: Swift.min(rowTile, rows - r0), columns: Swift.min(columnTile, columns - c0),
                              accumulate)
            }
        }
    }

    /// dst[c·ld + r] (+)= src[r·ls + c] for r < rows, c < columns.
    @inline(__always)
    private static func transposeTile(_ src: UnsafePointer<Float>, _ ls: Int, _ dst: UnsafeMutablePointer<Float>,
                                      _ ld: Int, rows: Int, columns: Int, _ accumulate: Bool) {
        let fullRows = rows & ~7, fullColumns = columns & ~7
        for r in stride(from: 0, to: fullRows, by: 8) {
            for c in stride(from: 0, to: fullColumns, by: 8) {
                transpose8x8(src + r * ls + c, ls, dst + c * ld + r, ld, accumulate)
            }
        }
        // Ragged edges (all of the tile when a side is < 8, e.g. 3 channels): one long pass per leftover
        // column (contiguous writes), then per leftover row (contiguous reads).
        for c in fullColumns..<columns {
            let from = src + c, out = dst + c * ld
            if accumulate {
                for r in 0..<fullRows { out[r] += from[r * ls] }
            } else {
                for r in 0..<fullRows { out[r] = from[r * ls] }
            }
        }
        for r in fullRows..<rows {
            let from = src + r * ls, out = dst + r
            if accumulate {
                for c in 0..<columns { out[c * ld] += from[c] }
            } else {
                for c in 0..<columns { out[c * ld] = from[c] }
            }
        }
    }

    /// Concatenates two 8-lane rows and splits them into even and odd lanes.
    @inline(__always)
    private static func unzip(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> (SIMD8<Float>, SIMD8<Float>) {
        let v = SIMD16(lowHalf: a, highHalf: b)
        return (v.evenHalf, v.oddHalf)
    }

    /// 8×8 transpose in registers. Unzipping the 64 values (evens then odds) rotates the 6-bit index
    /// (row, column) right by one bit; three rotations swap the 3-bit halves, i.e. transpose.
    /// LLVM lowers each unzip to shufps.
    @inline(__always)
    private static func transpose8x8(_ src: UnsafePointer<Float>, _ ls: Int, _ dst: UnsafeMutablePointer<Float>,
                                     _ ld: Int, _ accumulate: Bool) {
        let from = UnsafeRawPointer(src), to = UnsafeMutableRawPointer(dst)
        var r0 = from.loadUnaligned(fromByteOffset: 0 * ls * 4, as: SIMD8<Float>.self)
        var r1 = from.loadUnaligned(fromByteOffset: 1 * ls * 4, as: SIMD8<Float>.self)
        var r2 = from.loadUnaligned(fromByteOffset: 2 * ls * 4, as: SIMD8<Float>.self)
        var r3 = from.loadUnaligned(fromByteOffset: 3 * ls * 4, as: SIMD8<Float>.self)
        var r4 = from.loadUnaligned(fromByteOffset: 4 * ls * 4, as: SIMD8<Float>.self)
        var r5 = from.loadUnaligned(fromByteOffset: 5 * ls * 4, as: SIMD8<Float>.self)
        var r6 = from.loadUnaligned(fromByteOffset: 6 * ls * 4, as: SIMD8<Float>.self)
        var r7 = from.loadUnaligned(fromByteOffset: 7 * ls * 4, as: SIMD8<Float>.self)
        for _ in 0..<3 {
            let (e0, o0) = unzip(r0, r1), (e1, o1) = unzip(r2, r3)
            let (e2, o2) = unzip(r4, r5), (e3, o3) = unzip(r6, r7)
            r0 = e0; r1 = e1; r2 = e2; r3 = e3; r4 = o0; r5 = o1; r6 = o2; r7 = o3
        }
        if accumulate {
            r0 += to.loadUnaligned(fromByteOffset: 0 * ld * 4, as: SIMD8<Float>.self)
            r1 += to.loadUnaligned(fromByteOffset: 1 * ld * 4, as: SIMD8<Float>.self)
            r2 += to.loadUnaligned(fromByteOffset: 2 * ld * 4, as: SIMD8<Float>.self)
            r3 += to.loadUnaligned(fromByteOffset: 3 * ld * 4, as: SIMD8<Float>.self)
            r4 += to.loadUnaligned(fromByteOffset: 4 * ld * 4, as: SIMD8<Float>.self)
            r5 += to.loadUnaligned(fromByteOffset: 5 * ld * 4, as: SIMD8<Float>.self)
            r6 += to.loadUnaligned(fromByteOffset: 6 * ld * 4, as: SIMD8<Float>.self)
            r7 += to.loadUnaligned(fromByteOffset: 7 * ld * 4, as: SIMD8<Float>.self)
        }
        to.storeBytes(of: r0, toByteOffset: 0 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r1, toByteOffset: 1 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r2, toByteOffset: 2 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r3, toByteOffset: 3 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r4, toByteOffset: 4 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r5, toByteOffset: 5 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r6, toByteOffset: 6 * ld * 4, as: SIMD8<Float>.self)
        to.storeBytes(of: r7, toByteOffset: 7 * ld * 4, as: SIMD8<Float>.self)
    }
}
