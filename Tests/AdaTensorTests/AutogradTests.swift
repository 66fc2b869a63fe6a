import AdaTensor
import AdaTestSupport
import Testing

@Suite("Autograd engine")
struct AutogradTests {
    @Test func gradientsAccumulateIntoLeaves() {
        let w = Tensor([2], requiresGrad: true)
        let x = Tensor([3])
        (w * x).sum().backward()
        (w * x).sum().backward()
        #expect(w.grad?.values == [6]) // 3 + 3: accumulation across two backward passes
    }

    @Test func reusedTensorGetsSumOfPaths() {
        // y = x·x + x  →  dy/dx = 2x + 1
        let x = Tensor([1.5], requiresGrad: true)
        (x * x + x).sum().backward()
        #expect(x.grad?.values == [4])
    }

    @Test func frozenAndConstantInputsRecordNothing() {
        let frozen = Tensor([1, 2], requiresGrad: false)
        let data = Tensor([3, 4])
        let y = (frozen * data + data).exp()
        #expect(!y.isRecorded)
        #expect(y.graphSize == 0)
        // Only ops downstream of the trainable tensor are recorded.
        let head = Tensor([0.5, 0.5], requiresGrad: true)
        let loss = (y * head).sum()
        #expect(loss.graphSize == 2)
    }

    @Test func noGradModeRecordsNothing() {
        let w = Tensor([1, 2], requiresGrad: true)
        let y = Autograd.withNoGrad { (w * w).exp() }
        #expect(!y.isRecorded)
        #expect((w * w).isRecorded)
    }

    @Test func backwardReleasesTheGraph() {
        let w = Tensor([1, 2], requiresGrad: true)
        let hidden = (w * w).exp()
        let loss = hidden.sum()
        #expect(loss.graphSize == 3)
        loss.backward()
        #expect(!hidden.isRecorded && !loss.isRecorded) // saved activations are released
        #expect(hidden.grad == nil)                     // and intermediate gradients freed
        #expect(w.grad != nil)
    }

    @Test func deterministicRandomStreams() {
        var a = RandomGenerator(seed: 42), b = RandomGenerator(seed: 42), c = RandomGenerator(seed: 43)
        let x = (0..<5).map { _ in a.next() }, y = (0..<5).map { _ in b.next() }, z = (0..<5).map { _ in c.next() }
        #expect(x == y && x != z)
        var r = RandomGenerator(seed: 1)
        let n = Tensor.normal([20000], using: &r)
        let mean = n.values.reduce(0, +) / 20000
        let variance = n.values.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 20000
        #expect(abs(mean) < 0.03 && abs(variance - 1) < 0.05)
        let t = Tensor.truncatedNormal([5000], std: 1, low: -0.5, high: 0.5, using: &r)
        #expect(t.values.allSatisfy { $0 >= -0.5 && $0 <= 0.5 })
        let k = Tensor.kaimingUniform([1000], fanIn: 16, using: &r) // bound 1/√16
        #expect(k.values.allSatisfy { abs($0) <= 0.25 } && k.values.contains { abs($0) > 0.2 })
    }
}

@Suite("Gradient checker")
struct GradCheckerTests {
    /// The checker itself must fail on a wrong backward, or every other gradient test is void.
    @Test func catchesAWrongBackward() {
        let x = Tensor([0.5, -1, 2], requiresGrad: true)
        let report = GradCheck.run([x]) { t in
            let input = t[0]
            let y = Tensor(shape: input.shape, values: input.values.map { $0 * $0 })
            y.record("square_with_bug", [input]) { gy in
                input.accumulateGrad { g in for i in 0..<input.count { g[i] += gy.data[i] * input.data[i] } } // misses ×2
            }
            return y
        }
        #expect(!report.passed)
    }
}

@Suite("Graph memory")
struct GraphMemoryTests {
    /// A forward with gradients on but no backward (e.g. a validation pass) must not leak: an op's
    /// output may not capture itself in its own backward closure.
    @Test func outputsAreFreedWithoutBackward() {
        let w = Tensor([0.1, 0.2, 0.3], requiresGrad: true)
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("exp", { $0.exp() }), ("sigmoid", { $0.sigmoid() }), ("softmax", { $0.softmax() }),
            ("logSoftmax", { $0.logSoftmax() }), ("sqrt", { $0.sqrt() }), ("gelu", { $0.gelu() }),
        ]
        for (name, op) in ops {
            weak var weakOutput: Tensor?
            do {
                let y = op(w)
                #expect(y.isRecorded)
                weakOutput = y
            }
            #expect(weakOutput == nil, "\(name) output leaked")
        }
    }
}
