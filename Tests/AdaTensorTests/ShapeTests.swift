import AdaTensor
import AdaTestSupport
import Testing

@Suite("Shape ops")
struct ShapeTests {
    // MARK: - Reference helpers (plain index arithmetic, independent of the kernels under test)

    static func strides(_ shape: [Int]) -> [Int] {
        var result = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { result[i] = result[i + 1] * shape[i + 1] }
        return result
    }

    /// Multi-index of flat position `flat` in `shape`.
    static func index(_ flat: Int, _ shape: [Int]) -> [Int] {
        var rest = flat
        var idx = [Int](repeating: 0, count: shape.count)
        for axis in stride(from: shape.count - 1, through: 0, by: -1) {
            idx[axis] = rest % shape[axis]
            rest /= shape[axis]
        }
        return idx
    }

    /// y[i₀…] = x[j] where j[axes[k]] = i[k].
    static func referencePermute(_ x: Tensor, _ axes: [Int]) -> [Float] {
        let outShape = axes.map { x.shape[$0] }
        let inStrides = strides(x.shape)
        return (0..<x.count).map { flat in
            let i = index(flat, outShape)
            var offset = 0
            for k in 0..<axes.count { offset += i[k] * inStrides[axes[k]] }
            return x.data[offset]
        }
    }

    static func inverse(_ axes: [Int]) -> [Int] {
        var result = [Int](repeating: 0, count: axes.count)
        for (i, a) in axes.enumerated() { result[a] = i }
        return result
    }

    /// All orderings of 0..<n.
    static func permutations(_ n: Int) -> [[Int]] {
        if n == 0 { return [[]] }
        return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
    }

    // MARK: - Permute / transpose

    @Test func transposeForwardByHand() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let y = x.transposed(0, 1)
        #expect(y.shape == [3, 2])
        #expect(y.values == [1, 4, 2, 5, 3, 6])
        #expect(x.transposed(-1, -2).values == y.values)
        #expect(x.permuted([1, 0]).values == y.values)
        #expect(x.permuted([0, 1]).values == x.values) // identity is a plain copy
    }

    @Test func permuteRank3ForwardByHand() {
        // x[i][j][k] = 100i + 10j + k, shape [2, 2, 3]
        let x = Tensor(shape: [2, 2, 3], values: [0, 1, 2, 10, 11, 12, 100, 101, 102, 110, 111, 112])
        let y = x.permuted([2, 0, 1]) // y[k][i][j]
        #expect(y.shape == [3, 2, 2])
        #expect(y.values == [0, 10, 100, 110, 1, 11, 101, 111, 2, 12, 102, 112])
        #expect(x.permuted([-1, 0, -2]).values == y.values) // negative axes
    }

    @Test(arguments: permutations(3))
    func allRank3Permutations(axes: [Int]) {
        var rng = RandomGenerator(seed: 21)
        // Small odd sizes, and sizes large enough for the tiled 8×8 path with ragged edges.
        for shape in [[2, 3, 5], [3, 19, 70], [1, 9, 8], [67, 2, 13]] {
            let x = Tensor.normal(shape, using: &rng)
            let y = x.permuted(axes)
            #expect(y.shape == axes.map { shape[$0] })
            #expect(y.values == Self.referencePermute(x, axes), "shape \(shape) axes \(axes)")
        }
        let x = Tensor.normal([2, 3, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].permuted(axes) }
        #expect(report.passed, "\(axes): \(report)")
        let negative = axes.map { $0 - 3 }
        let reportNegative = GradCheck.run([x]) { $0[0].permuted(negative) }
        #expect(reportNegative.passed, "\(negative): \(reportNegative)")
    }

    static let rank4Permutations: [[Int]] = [[0, 2, 1, 3], [0, 1, 3, 2], [3, 2, 1, 0], [1, 3, 0, 2], [0, 3, 1, 2], [2, 0, 3, 1]]

    @Test(arguments: rank4Permutations)
    func rank4Permutations(axes: [Int]) {
        var rng = RandomGenerator(seed: 22)
        for shape in [[2, 3, 4, 5], [2, 17, 3, 24], [3, 9, 10, 11]] {
            let x = Tensor.normal(shape, using: &rng)
            #expect(x.permuted(axes).values == Self.referencePermute(x, axes), "shape \(shape) axes \(axes)")
        }
        let x = Tensor.normal([2, 3, 1, 5], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].permuted(axes) }
        #expect(report.passed, "\(axes): \(report)")
    }

    /// The attention layouts [B, N, C] ↔ [B, C, N] at ViT-like sizes: exact forward, and a backward
    /// that is exactly the inverse permutation, also when adding into an existing gradient.
    @Test(arguments: [[2, 197, 96], [3, 96, 197], [1, 130, 67], [4, 197, 192]]) // the last one spans threads
    func largeTransposeForwardAndBackward(shape: [Int]) {
        var rng = RandomGenerator(seed: 23)
        let x = Tensor.normal(shape, using: &rng, requiresGrad: true)
        let y = x.transposed(-1, -2)
        #expect(y.values == Self.referencePermute(x, [0, 2, 1]))
        // Two paths into x: the double transpose and the identity; dL/dx must be exactly 2·g.
        let z = x.transposed(1, 2).transposed(1, 2) + x
        let g = Tensor.normal(shape, using: &rng)
        z.backward(gradient: g)
        #expect(x.grad?.values == g.values.map { 2 * $0 })
        x.grad = nil
        let w = x.permuted([2, 0, 1])
        let gw = Tensor.normal(w.shape, using: &rng)
        w.backward(gradient: gw)
        #expect(x.grad?.values == Self.referencePermute(gw, Self.inverse([2, 0, 1])))
    }

    @Test func transposeGradientsOddSizes() {
        var rng = RandomGenerator(seed: 24)
        let x = Tensor.normal([3, 9, 11], using: &rng, requiresGrad: true) // ≥ 8 on both axes: tiled path
        for (a, b) in [(1, 2), (-1, -2), (0, -1), (0, 1)] {
            let report = GradCheck.run([x]) { $0[0].transposed(a, b) }
            #expect(report.passed, "(\(a), \(b)): \(report)")
        }
    }

    // MARK: - Concat / split / slice

    @Test func concatForwardByHand() {
        let a = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        let b = Tensor(shape: [2, 1], values: [5, 6])
        let c = Tensor(shape: [1, 2], values: [7, 8])
        let columns = Tensor.concat([a, b], axis: 1)
        #expect(columns.shape == [2, 3])
        #expect(columns.values == [1, 2, 5, 3, 4, 6])
        #expect(Tensor.concat([a, b], axis: -1).values == columns.values)
        let rows = Tensor.concat([a, c], axis: 0)
        #expect(rows.shape == [3, 2])
        #expect(rows.values == [1, 2, 3, 4, 7, 8])
        #expect(Tensor.concat([b, a, b], axis: 1).values == [5, 1, 2, 5, 6, 3, 4, 6])
    }

    @Test(arguments: [0, 1, 2, -1, -2])
    func concatGradients(axis: Int) {
        var rng = RandomGenerator(seed: 31)
        let ax = axis < 0 ? axis + 3 : axis
        func shape(_ size: Int) -> [Int] { var s = [3, 5, 7]; s[ax] = size; return s }
        let a = Tensor.normal(shape(2), using: &rng, requiresGrad: true)
        let frozen = Tensor.normal(shape(1), using: &rng)                 // needs no gradient
        let c = Tensor.normal(shape(3), using: &rng, requiresGrad: true)
        let report = GradCheck.run([a, frozen, c]) { Tensor.concat($0, axis: axis) }
        #expect(report.passed, "axis \(axis): \(report)")
        let y = Tensor.concat([a, frozen, c], axis: axis)
        y.backward(gradient: Tensor.ones(y.shape))
        #expect(frozen.grad == nil)
        #expect(a.grad?.values == [Float](repeating: 1, count: a.count))
    }

    @Test func concatSameTensorTwiceAccumulates() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        let y = Tensor.concat([x, x], axis: 0)
        #expect(y.values == [1, 2, 3, 1, 2, 3])
        y.backward(gradient: Tensor([1, 10, 100, 2, 20, 200]))
        #expect(x.grad?.values == [3, 30, 300])
    }

    @Test func sliceForwardByHand() {
        let x = Tensor(shape: [2, 3, 2], values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12])
        let middle = x.slice(axis: 1, range: 1..<3)
        #expect(middle.shape == [2, 2, 2])
        #expect(middle.values == [3, 4, 5, 6, 9, 10, 11, 12])
        #expect(x.slice(axis: -1, range: 1..<2).values == [2, 4, 6, 8, 10, 12])
        #expect(x.slice(axis: 0, range: 1..<2).values == [7, 8, 9, 10, 11, 12])
        let empty = x.slice(axis: 1, range: 2..<2)
        #expect(empty.shape == [2, 0, 2] && empty.count == 0)
    }

    @Test(arguments: [(0, 1..<3), (1, 0..<1), (1, 2..<5), (-1, 3..<7), (2, 0..<7), (-3, 0..<1)])
    func sliceGradients(axis: Int, range: Range<Int>) {
        var rng = RandomGenerator(seed: 32)
        let x = Tensor.normal([3, 5, 7], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { $0[0].slice(axis: axis, range: range) }
        #expect(report.passed, "axis \(axis) range \(range): \(report)")
    }

    @Test func sliceBackwardTouchesOnlyItsRegion() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], requiresGrad: true)
        x.slice(axis: 1, range: 1..<2).backward(gradient: Tensor(shape: [2, 1], values: [7, 9]))
        #expect(x.grad?.values == [0, 7, 0, 0, 9, 0])
    }

    @Test func splitForwardByHand() {
        let x = Tensor(shape: [2, 4], values: [1, 2, 3, 4, 5, 6, 7, 8])
        let parts = x.split(sizes: [1, 3], axis: -1)
        #expect(parts.count == 2)
        #expect(parts[0].shape == [2, 1] && parts[0].values == [1, 5])
        #expect(parts[1].shape == [2, 3] && parts[1].values == [2, 3, 4, 6, 7, 8])
        let halves = x.split(sizes: [1, 1], axis: 0)
        #expect(halves[0].values == [1, 2, 3, 4] && halves[1].values == [5, 6, 7, 8])
    }

    @Test(arguments: [0, 1, -1])
    func splitGradients(axis: Int) {
        var rng = RandomGenerator(seed: 33)
        let x = Tensor.normal([5, 7, 9], using: &rng, requiresGrad: true)
        let length = x.shape[axis < 0 ? axis + 3 : axis]
        let sizes = [2, 0, length - 3, 1] // includes an empty piece
        // Every piece feeds the result through a different function, so a mixed-up region would show.
        let report = GradCheck.run([x]) { t in
            let p = t[0].split(sizes: sizes, axis: axis)
            return Tensor.concat([p[3], p[0] * 2, p[2].square(), p[1]], axis: axis)
        }
        #expect(report.passed, "axis \(axis): \(report)")
    }

    @Test(arguments: [0, 1, 2, -1])
    func concatAndSplitAreInverse(axis: Int) {
        var rng = RandomGenerator(seed: 34)
        let x = Tensor.normal([4, 6, 10], using: &rng)
        let ax = axis < 0 ? axis + 3 : axis
        let length = x.shape[ax]
        let sizes = [1, length / 2 - 1, length - length / 2]
        let parts = x.split(sizes: sizes, axis: axis)
        #expect(zip(parts, sizes).allSatisfy { $0.shape[ax] == $1 })
        #expect(Tensor.concat(parts, axis: axis).values == x.values)
        // And the other way round: splitting a concatenation gives the pieces back.
        let pieces = sizes.map { size -> Tensor in var s = x.shape; s[ax] = size; return Tensor.normal(s, using: &rng) }
        let again = Tensor.concat(pieces, axis: axis).split(sizes: sizes, axis: axis)
        for (p, q) in zip(pieces, again) {
            #expect(p.shape == q.shape && p.values == q.values)
        }
    }

    /// The ViT CLS token: split off token 0 of [B, 1 + N, D], process the patches, re-attach.
    @Test func clsSplitAndReattach() {
        var rng = RandomGenerator(seed: 35)
        let batch = 2, patches = 6, width = 5
        let x = Tensor.normal([batch, patches + 1, width], using: &rng, requiresGrad: true)
        let cls = x.slice(axis: 1, range: 0..<1)
        let body = x.slice(axis: 1, range: 1..<patches + 1)
        #expect(cls.shape == [batch, 1, width] && body.shape == [batch, patches, width])
        #expect(Tensor.concat([cls, body], axis: 1).values == x.values) // exact round trip

        // y = concat(cls, body²): the CLS rows pass the gradient through unchanged, patch rows get 2x·g.
        let y = Tensor.concat([cls, body.square()], axis: 1)
        let g = Tensor.normal(y.shape, using: &rng)
        y.backward(gradient: g)
        let grad = x.grad!.values
        for b in 0..<batch {
            for n in 0..<patches + 1 {
                for d in 0..<width {
                    let i = (b * (patches + 1) + n) * width + d
                    let expected = n == 0 ? g.data[i] : 2 * x.data[i] * g.data[i]
                    #expect(grad[i] == expected, "b \(b) n \(n) d \(d)")
                }
            }
        }

        // A loss on the patches alone leaves exactly zero gradient on the CLS rows.
        x.grad = nil
        x.slice(axis: 1, range: 1..<patches + 1).square().sum().backward()
        for b in 0..<batch {
            let clsRow = Array(x.grad!.values[(b * (patches + 1) * width)..<(b * (patches + 1) * width + width)])
            #expect(clsRow == [Float](repeating: 0, count: width))
        }

        let report = GradCheck.run([x]) { t in
            let c = t[0].slice(axis: 1, range: 0..<1), p = t[0].slice(axis: 1, range: 1..<patches + 1)
            return Tensor.concat([c * 3, p.square()], axis: 1)
        }
        #expect(report.passed, "\(report)")
    }

    /// Copies big enough to be split over threads (row chunks, and pieces of one long row).
    @Test func largeCopiesSplitAcrossThreads() {
        var rng = RandomGenerator(seed: 36)
        let x = Tensor.normal([6, 197, 128], using: &rng, requiresGrad: true)
        let cls = x.slice(axis: 1, range: 0..<1), body = x.slice(axis: 1, range: 1..<197)
        #expect(Tensor.concat([cls, body], axis: 1).values == x.values)
        let g = Tensor.normal(body.shape, using: &rng)
        body.backward(gradient: g)
        let grad = x.grad!.values
        #expect((0..<6).allSatisfy { b in (0..<128).allSatisfy { grad[b * 197 * 128 + $0] == 0 } })
        #expect(grad[128] == g.data[0] && grad[5 * 197 * 128 + 196 * 128 + 127] == g.data[g.count - 1])

        let long = Tensor.normal([300_001], using: &rng, requiresGrad: true)
        let tail = long.slice(axis: 0, range: 1..<300_001)
        #expect(tail.values == Array(long.values[1...]))
        tail.backward(gradient: tail.detached())
        #expect(long.grad!.values == [0] + Array(long.values[1...]))

        let row = Tensor.normal([1, 197, 128], using: &rng)
        #expect(row.expanded(to: [6, 197, 128]).values == (row + Tensor.zeros([6, 197, 128])).values)
    }

    // MARK: - Expand

    @Test func expandForwardByHand() {
        #expect(Tensor([1, 2, 3]).expanded(to: [2, 3]).values == [1, 2, 3, 1, 2, 3])
        #expect(Tensor(shape: [2, 1], values: [1, 2]).expanded(to: [2, 3]).values == [1, 1, 1, 2, 2, 2])
        let middle = Tensor(shape: [1, 2, 1], values: [5, 6]).expanded(to: [2, 2, 3])
        #expect(middle.values == [5, 5, 5, 6, 6, 6, 5, 5, 5, 6, 6, 6])
        #expect(Tensor.scalar(4).expanded(to: [2, 2]).values == [4, 4, 4, 4])
        #expect(Tensor([1, 2]).expanded(to: [2]).values == [1, 2]) // no-op shape is still a copy
    }

    static let expandCases: [([Int], [Int])] = [
        ([5], [3, 5]), ([3, 1], [3, 7]), ([1, 5, 1], [2, 5, 3]), ([1], [4, 3]), ([], [2, 3]), ([2, 1, 3], [2, 9, 3]),
    ]

    @Test(arguments: expandCases)
    func expandGradients(shapes: ([Int], [Int])) {
        var rng = RandomGenerator(seed: 41)
        let x = Tensor.normal(shapes.0, using: &rng, requiresGrad: true)
        let y = x.expanded(to: shapes.1)
        #expect(y.shape == shapes.1)
        // Forward agrees with broadcasting through +.
        #expect(y.values == (x + Tensor.zeros(shapes.1)).values)
        let report = GradCheck.run([x]) { $0[0].expanded(to: shapes.1) }
        #expect(report.passed, "\(shapes): \(report)")
    }

    @Test func expandBackwardSumsRepeats() {
        let x = Tensor(shape: [2, 1], values: [1, 2], requiresGrad: true)
        x.expanded(to: [2, 3]).backward(gradient: Tensor(shape: [2, 3], values: [1, 2, 3, 10, 20, 30]))
        #expect(x.grad?.values == [6, 60])
    }

    // MARK: - Reshape

    @Test func reshapeSharesStorageAndPassesGradient() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6], requiresGrad: true)
        let y = x.reshaped([3, -1])
        #expect(y.shape == [3, 2])
        #expect(y.storage === x.storage)   // a view, not a copy
        x.data[4] = 50
        #expect(y.values[4] == 50)
        x.data[4] = 5
        y.backward(gradient: Tensor(shape: [3, 2], values: [1, 2, 3, 4, 5, 6]))
        #expect(x.grad?.values == [1, 2, 3, 4, 5, 6])
        x.grad = nil
        let report = GradCheck.run([x]) { $0[0].reshaped([6]).square().reshaped([1, 3, 2]) }
        #expect(report.passed, "\(report)")
    }

    // MARK: - Graph behaviour

    @Test func frozenInputsRecordNothing() {
        let x = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        #expect(!x.transposed(0, 1).isRecorded)
        #expect(!Tensor.concat([x, x], axis: 0).isRecorded)
        #expect(!x.slice(axis: 1, range: 0..<2).isRecorded)
        #expect(!x.expanded(to: [4, 2, 3]).isRecorded)
        let w = Tensor([1, 2, 3], requiresGrad: true)
        #expect(Tensor.concat([x, w.reshaped([1, 3])], axis: 0).isRecorded)
    }
}

