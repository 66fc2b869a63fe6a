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
}
