import AdaTensor
import AdaTestSupport
import Testing

@Suite("Elementwise and broadcasting")
struct ElementwiseTests {
    @Test func broadcastShapes() {
        #expect(Broadcast.shape([2, 3, 4], [4]) == [2, 3, 4])
        #expect(Broadcast.shape([2, 1, 4], [3, 1]) == [2, 3, 4])
        #expect(Broadcast.shape([2, 3], [3, 2]) == nil)
    }

    @Test func broadcastForwardByHand() {
        let a = Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6])
        let row = Tensor([10, 20, 30])
        let column = Tensor(shape: [2, 1], values: [100, 200])
        #expect((a + row).values == [11, 22, 33, 14, 25, 36])
        #expect((a * column).values == [100, 200, 300, 800, 1000, 1200])
        #expect((column - a).values == [99, 98, 97, 196, 195, 194])
        #expect((a / Tensor([2])).values == [0.5, 1, 1.5, 2, 2.5, 3])
    }

    /// Shape pairs covering same-shape, trailing-axis, middle-axis, scalar and both-sided broadcasting.
    static let shapePairs: [([Int], [Int])] = [
        ([2, 3], [2, 3]), ([2, 3, 5], [5]), ([2, 3, 5], [3, 1]), ([4, 1, 3], [1, 5, 1]), ([3, 2], [1]), ([7], [1, 7]),
    ]

    @Test(arguments: shapePairs)
    func binaryGradients(shapes: ([Int], [Int])) {
        var rng = RandomGenerator(seed: 11)
        let a = Tensor.normal(shapes.0, using: &rng, requiresGrad: true)
        let b = Tensor.uniform(shapes.1, low: 0.5, high: 2, using: &rng, requiresGrad: true) // keep ÷ away from 0
        for (name, op) in [("add", { (x: Tensor, y: Tensor) in x + y }), ("sub", { $0 - $1 }),
                           ("mul", { $0 * $1 }), ("div", { $0 / $1 })] {
            let report = GradCheck.run([a, b]) { op($0[0], $0[1]) }
            #expect(report.passed, "\(name) \(shapes): \(report)")
        }
    }

    @Test func unaryGradients() {
        var rng = RandomGenerator(seed: 12)
        let x = Tensor.uniform([3, 5], low: 0.3, high: 2, using: &rng, requiresGrad: true)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("log", { $0.log() }), ("sqrt", { $0.sqrt() }), ("square", { $0.square() }),
            ("sigmoid", { $0.sigmoid() }), ("scalar", { 3 * $0 + 1 }), ("neg", { -$0 }),
        ]
        for (name, op) in ops {
            let report = GradCheck.run([x]) { op($0[0]) }
            #expect(report.passed, "\(name): \(report)")
        }
    }

    @Test func unaryForwardByHand() {
        let x = Tensor([0, 1, -1])
        let e = x.exp().values
        #expect(abs(e[0] - 1) < 1e-7 && abs(e[1] - 2.7182817) < 1e-6 && abs(e[2] - 0.36787945) < 1e-7)
        let s = x.sigmoid().values
        #expect(abs(s[0] - 0.5) < 1e-7 && abs(s[1] - 0.7310586) < 1e-6)
    }

    /// Broadcast gradients over many rows take the per-thread partial-sum path: the sums over the repeated
    /// axes must equal a Double reference.
    @Test func largeBroadcastGradientsSumOverRepeatedAxes() {
        var rng = RandomGenerator(seed: 13)
        let (p, q, d) = (64, 40, 48) // 122,880 elements: above the parallel reduction threshold
        let a = Tensor.normal([p, q, d], using: &rng, requiresGrad: true)
        let r = Tensor.normal([p, q, d], using: &rng)
        for target in [[d], [q, 1], [1, q, d]] {
            let b = Tensor.uniform(target, low: 0.5, high: 2, using: &rng, requiresGrad: true)
            for (name, op) in [("add", { (x: Tensor, y: Tensor) in x + y }), ("mul", { $0 * $1 })] {
                a.grad = nil
                ((op(a, b)) * r).sum().backward()
                let av = a.values, rv = r.values, g = b.grad!.values
                var expected = [Double](repeating: 0, count: g.count), magnitude = expected
                let strides = Broadcast.strides(of: target, in: [p, q, d])
                for i in 0..<p { for j in 0..<q { for l in 0..<d {
                    let e = (i * q + j) * d + l, t = i * strides[0] + j * strides[1] + l * strides[2]
                    let term = Double(rv[e]) * (name == "add" ? 1 : Double(av[e]))
                    expected[t] += term
                    magnitude[t] += abs(term)
                } } }
                // Float sums of thousands of terms: error relative to Σ|term| (a lost or doubled row is ~1 term).
                let worst = (0..<g.count).map { abs(Double(g[$0]) - expected[$0]) / magnitude[$0] }.max()!
                #expect(worst < 1e-5, "\(name) into \(target): max error / Σ|term| \(worst)")
                b.grad = nil
            }
        }
    }

    /// An add hands its output gradient to one input by reference; the other input gets its own copy, and
    /// later accumulation into one must not leak into the other (also for x + x).
    @Test func gradientHandoverKeepsInputsIndependent() {
        let a = Tensor([1, 2, 3], requiresGrad: true), b = Tensor([4, 5, 6], requiresGrad: true)
        let r = Tensor([1, 10, 100])
        (((a + b) + a) * r).sum().backward()
        #expect(a.grad!.values == [2, 20, 200])
        #expect(b.grad!.values == [1, 10, 100])
        let x = Tensor([1, 2], requiresGrad: true)
        ((x + x) * Tensor([3, 4])).sum().backward()
        #expect(x.grad!.values == [6, 8])
        let u = Tensor([1, 2], requiresGrad: true), v = Tensor([3, 4], requiresGrad: true)
        let w = u - v
        ((w + u) * Tensor([1, 2])).sum().backward()
        #expect(u.grad!.values == [2, 4])
        #expect(v.grad!.values == [-1, -2])
    }

    /// affineSum is the unfused (sa⊙a + ha) + (sb⊙b + hb) bit for bit, and its gradients pass the
    /// finite-difference check with every operand trained, with absent scales/shifts, and for a + a.
    @Test func affineSumMatchesTheUnfusedExpression() {
        var rng = RandomGenerator(seed: 14)
        let a = Tensor.normal([3, 4, 6], using: &rng, requiresGrad: true)
        let b = Tensor.normal([3, 4, 6], using: &rng, requiresGrad: true)
        let sa = Tensor.normal([6], using: &rng, requiresGrad: true), ha = Tensor.normal([6], using: &rng, requiresGrad: true)
        let sb = Tensor.normal([6], using: &rng, requiresGrad: true), hb = Tensor.normal([6], using: &rng, requiresGrad: true)
        let fused = Tensor.affineSum(a, scale: sa, shift: ha, b, scale: sb, shift: hb)
        #expect(fused.values == ((sa * a + ha) + (sb * b + hb)).values)
        #expect(a.adding(b, scaledBy: sb).values == (a + sb * b).values)
        let full = GradCheck.run([a, b, sa, ha, sb, hb]) { t in
            Tensor.affineSum(t[0], scale: t[2], shift: t[3], t[1], scale: t[4], shift: t[5])
        }
        #expect(full.passed, "\(full)")
        let partial = GradCheck.run([a, b, sb]) { t in t[0].adding(t[1], scaledBy: t[2]) }
        #expect(partial.passed, "\(partial)")
        let same = GradCheck.run([a, sb]) { t in t[0].adding(t[0], scaledBy: t[1]) }
        #expect(same.passed, "\(same)")
    }
}
