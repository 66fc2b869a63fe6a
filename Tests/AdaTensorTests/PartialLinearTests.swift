// partialLinear (PaCA's layer): forward by hand and against a naive W_eff product, finite-difference
// gradients w.r.t. x, P and a trainable bias on a 3-D input, dP against scale·gyᵀ·x[..., idx], and what
// the backward keeps alive (the gathered columns, not x).
//
// Legend: B batch, T tokens, K in features, N out features, r partial columns, M = B·T rows.
import AdaTensor
import AdaTestSupport
import Testing

@Suite("Partial-connection linear (PaCA)")
struct PartialLinearTests {
    /// A random case with W already holding scale·P in its columns.
    struct Case {
        let x: Tensor, weight: Tensor, bias: Tensor, partial: Tensor
        let columns: [Int]
        let scale: Float

        init(batch: Int = 2, tokens: Int = 3, inFeatures k: Int = 7, outFeatures n: Int = 5, columns: [Int] = [5, 1, 3],
             scale: Float = 1.5, seed: UInt64 = 1, xNeedsGrad: Bool = true, biasNeedsGrad: Bool = false) {
            var rng = RandomGenerator(seed: seed)
            x = Tensor.normal([batch, tokens, k], using: &rng, requiresGrad: xNeedsGrad)
            weight = Tensor.normal([n, k], using: &rng)
            bias = Tensor.normal([n], using: &rng, requiresGrad: biasNeedsGrad)
            partial = Tensor.normal([n, columns.count], using: &rng, requiresGrad: true)
            self.columns = columns
            self.scale = scale
            Tensor.writePartialColumns(into: weight, columns: columns, partial: partial, scale: scale)
        }

        /// x·W_effᵀ + b with W_eff built element by element (Double accumulation).
        func naive() -> [Float] {
            let k = weight.shape[1], n = weight.shape[0], m = x.count / k
            var effective = weight.values
            for o in 0..<n { for (j, c) in columns.enumerated() { effective[o * k + c] = scale * partial.data[o * columns.count + j] } }
            var out = [Float](repeating: 0, count: m * n)
            for row in 0..<m {
                for o in 0..<n {
                    var s = Double(bias.data[o])
                    for i in 0..<k { s += Double(x.data[row * k + i]) * Double(effective[o * k + i]) }
                    out[row * n + o] = Float(s)
                }
            }
            return out
        }
    }

    @Test func forwardByHand() {
        // W [[1, 0, 2], [0, 1, 1]], idx [2, 0], P [[0.5, 1], [1, −1]], s = 2:
        // W_eff column 2 = 2·P[:, 0] = [1, 2], column 0 = 2·P[:, 1] = [2, −2] → [[2, 0, 1], [−2, 1, 2]].
        // x = [1, 2, 3], b = [0.5, −1] → [2 + 0 + 3 + 0.5, −2 + 2 + 6 − 1] = [5.5, 5].
        let w = Tensor(shape: [2, 3], values: [1, 0, 2, 0, 1, 1])
        let p = Tensor(shape: [2, 2], values: [0.5, 1, 1, -1], requiresGrad: true)
        Tensor.writePartialColumns(into: w, columns: [2, 0], partial: p, scale: 2)
        #expect(w.values == [2, 0, 1, -2, 1, 2])
        let x = Tensor(shape: [1, 3], values: [1, 2, 3])
        let y = x.partialLinear(weight: w, bias: Tensor([0.5, -1]), columns: [2, 0], partial: p, scale: 2)
        #expect(y.shape == [1, 2])
        #expect(y.values == [5.5, 5])
        #expect(x.partialLinear(weight: w, bias: nil, columns: [2, 0], partial: p, scale: 2).values == [5, 6])
    }

    @Test(arguments: [true, false])
    func forwardMatchesNaiveEffectiveWeight(withBias: Bool) {
        let c = Case(batch: 3, tokens: 5, inFeatures: 11, outFeatures: 9, columns: [10, 0, 4, 7], scale: 0.75, seed: 2)
        let y = c.x.partialLinear(weight: c.weight, bias: withBias ? c.bias : nil, columns: c.columns, partial: c.partial, scale: c.scale)
        #expect(y.shape == [3, 5, 9])
        var expected = c.naive()
        if !withBias { for i in 0..<expected.count { expected[i] -= c.bias.data[i % 9] } }
        let result = compare(y.values, expected, rtol: 1e-5, atol: 1e-6)
        #expect(result.passed, "\(result)")
        // Same map as the plain linear on the synced weight.
        #expect(y.values == c.x.linear(c.weight, bias: withBias ? c.bias : nil).values)
    }

    /// Finite differences through the whole PaCA step: P perturbed → columns rewritten → forward.
    @Test(arguments: [false, true])
    func gradientsWithRespectToInputPartialAndBias(trainBias: Bool) {
        let c = Case(batch: 2, tokens: 3, inFeatures: 7, outFeatures: 5, columns: [6, 2, 3], scale: 1.5, seed: 3,
                     biasNeedsGrad: trainBias)
        let report = GradCheck.run([c.x, c.partial, c.bias]) { t in
            Tensor.writePartialColumns(into: c.weight, columns: c.columns, partial: t[1], scale: c.scale)
            return t[0].partialLinear(weight: c.weight, bias: t[2], columns: c.columns, partial: t[1], scale: c.scale)
        }
        #expect(report.passed, "\(report)")
        #expect(report.checked == 42 + 15 + (trainBias ? 5 : 0))
    }

    /// A single column and all columns (r = K: the whole weight is s·P).
    @Test(arguments: [[4], [2, 0, 4, 1, 3]])
    func gradientsAtExtremeColumnCounts(columns: [Int]) {
        let c = Case(batch: 1, tokens: 3, inFeatures: 5, outFeatures: 3, columns: columns, scale: 2, seed: 4)
        let report = GradCheck.run([c.x, c.partial]) { t in
            Tensor.writePartialColumns(into: c.weight, columns: c.columns, partial: t[1], scale: c.scale)
            return t[0].partialLinear(weight: c.weight, bias: c.bias, columns: c.columns, partial: t[1], scale: c.scale)
        }
        #expect(report.passed, "\(report)")
        if columns.count == 5 {
            // W_eff = s·P with columns permuted: y = x·(s·P)ᵀ after un-permuting. (The check's last
            // evaluation left a perturbed P in the columns: sync again.)
            Tensor.writePartialColumns(into: c.weight, columns: c.columns, partial: c.partial, scale: c.scale)
            let y = c.x.partialLinear(weight: c.weight, bias: nil, columns: c.columns, partial: c.partial, scale: c.scale)
            var permuted = [Float](repeating: 0, count: 15)
            for o in 0..<3 { for (j, col) in columns.enumerated() { permuted[o * 5 + col] = 2 * c.partial.data[o * 5 + j] } }
            #expect(y.values == c.x.linear(Tensor(shape: [3, 5], values: permuted)).values)
        }
    }

    @Test func partialGradientIsScaledOuterProductOfGatheredColumns() {
        let c = Case(batch: 2, tokens: 4, inFeatures: 9, outFeatures: 6, columns: [8, 3, 0], scale: 2.5, seed: 5)
        var rng = RandomGenerator(seed: 6)
        let gy = Tensor.normal([2, 4, 6], using: &rng)
        let y = c.x.partialLinear(weight: c.weight, bias: c.bias, columns: c.columns, partial: c.partial, scale: c.scale)
        y.backward(gradient: gy)
        // dP[o, j] = s·Σ_rows gy[row, o]·x[row, idx[j]];  dx = gy·W_eff.
        var dP = [Float](repeating: 0, count: 18), dx = [Float](repeating: 0, count: 72)
        for row in 0..<8 {
            for o in 0..<6 {
                for (j, col) in c.columns.enumerated() { dP[o * 3 + j] += 2.5 * gy.data[row * 6 + o] * c.x.data[row * 9 + col] }
                for i in 0..<9 { dx[row * 9 + i] += gy.data[row * 6 + o] * c.weight.data[o * 9 + i] }
            }
        }
        let gradP = compare(c.partial.grad!.values, dP, rtol: 1e-5, atol: 1e-6)
        #expect(gradP.passed, "dP: \(gradP)")
        let gradX = compare(c.x.grad!.values, dx, rtol: 1e-5, atol: 1e-6)
        #expect(gradX.passed, "dx: \(gradX)")
        #expect(c.bias.grad == nil && c.weight.grad == nil)
    }

    /// The backward keeps the r gathered columns, not x: with x needing no gradient, x is freed while y
    /// (and its graph) is alive, and dP still comes out right. A plain linear with a trainable weight keeps
    /// x alive — the control that shows the weak-reference check can fail.
    @Test func inputIsNotRetainedForThePartialGradient() {
        let c = Case(batch: 2, tokens: 3, inFeatures: 8, outFeatures: 4, columns: [7, 1], scale: 2, seed: 7, xNeedsGrad: false)
        var gathered: [Float] = []
        weak var weakInput: Tensor?
        let y: Tensor
        do {
            var rng = RandomGenerator(seed: 8)
            let x = Tensor.normal([2, 3, 8], using: &rng)
            weakInput = x
            gathered = (0..<6).flatMap { row in c.columns.map { x.data[row * 8 + $0] } }
            y = x.partialLinear(weight: c.weight, bias: c.bias, columns: c.columns, partial: c.partial, scale: c.scale)
        }
        #expect(weakInput == nil, "x is still alive after the forward")
        #expect(y.isRecorded && y.graphSize == 1)
        let gy = Tensor.ones([2, 3, 4])
        y.backward(gradient: gy)
        // gy = 1: dP[o, j] = s·Σ_rows x[row, idx[j]].
        let expected = (0..<4).flatMap { _ in (0..<2).map { j in 2 * (0..<6).reduce(Float(0)) { $0 + gathered[$1 * 2 + j] } } }
        #expect(compare(c.partial.grad!.values, expected, rtol: 1e-6, atol: 1e-6).passed, "\(c.partial.grad!)")

        weak var weakControl: Tensor?
        let control: Tensor
        do {
            let x = Tensor.ones([2, 3, 8])
            weakControl = x
            control = x.linear(Tensor.ones([4, 8], requiresGrad: true))
        }
        #expect(weakControl != nil, "a linear with a trainable weight must keep its input")
        #expect(control.isRecorded)
    }

    @Test func nothingIsRecordedWithoutTrainableInputs() {
        let c = Case(seed: 9, xNeedsGrad: false)
        c.partial.requiresGrad = false
        let frozen = c.x.partialLinear(weight: c.weight, bias: c.bias, columns: c.columns, partial: c.partial, scale: c.scale)
        #expect(!frozen.isRecorded)
        c.partial.requiresGrad = true
        let inference = Autograd.withNoGrad {
            c.x.partialLinear(weight: c.weight, bias: c.bias, columns: c.columns, partial: c.partial, scale: c.scale)
        }
        #expect(!inference.isRecorded)
        #expect(inference.values == frozen.values)
    }

    @Test func gatherAndSyncHelpers() {
        let x = Tensor(shape: [2, 4], values: [0, 1, 2, 3, 10, 11, 12, 13])
        #expect(Tensor.gatherColumns(x, columns: [3, 0], rows: 2).values == [3, 0, 13, 10])
        // Many rows (parallel path) agree with a plain loop.
        var rng = RandomGenerator(seed: 10)
        let big = Tensor.normal([5000, 19], using: &rng)
        let columns = [18, 0, 7, 3, 11]
        let gathered = Tensor.gatherColumns(big, columns: columns, rows: 5000)
        #expect(gathered.shape == [5000, 5])
        #expect(gathered.values == (0..<5000).flatMap { row in columns.map { big.data[row * 19 + $0] } })

        let w = Tensor.zeros([2, 4])
        let p = Tensor(shape: [2, 2], values: [1, 2, 3, 4])
        #expect(!Tensor.partialColumnsInSync(w, columns: [1, 2], partial: p, scale: 0.5))
        Tensor.writePartialColumns(into: w, columns: [1, 2], partial: p, scale: 0.5)
        #expect(w.values == [0, 0.5, 1, 0, 0, 1.5, 2, 0])
        #expect(Tensor.partialColumnsInSync(w, columns: [1, 2], partial: p, scale: 0.5))
        #expect(!Tensor.partialColumnsInSync(w, columns: [2, 1], partial: p, scale: 0.5))
        p.data[3] = 4.5
        #expect(!Tensor.partialColumnsInSync(w, columns: [1, 2], partial: p, scale: 0.5))
    }
}
