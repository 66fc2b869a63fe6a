import AdaTensor
import AdaTestSupport
import Testing

@Suite("Dropout and drop path")
struct DropoutTests {
    @Test(arguments: [Float(0.1), 0.3, 0.5, 0.9])
    func keptFractionAndMean(p: Float) {
        let n = 200_001 // odd: the last element has no partner in its random pair
        var rng = RandomGenerator(seed: 51)
        let y = Tensor.ones([n]).dropout(probability: p, generator: &rng).values
        let scale = 1 / (1 - p)
        #expect(y.allSatisfy { $0 == 0 || $0 == scale }, "values other than 0 and 1/(1 − p)")
        let kept = Double(y.filter { $0 != 0 }.count) / Double(n)
        let sigma = (Double(p) * Double(1 - p) / Double(n)).squareRoot()
        #expect(Swift.abs(kept - Double(1 - p)) < 5 * sigma, "kept \(kept), expected \(1 - p)")
        let mean = y.reduce(0.0) { $0 + Double($1) } / Double(n)
        #expect(Swift.abs(mean - 1) < 5 * sigma * Double(scale), "mean \(mean)")
        // Neighbours (which share one 64-bit draw) must be independent: P(both kept) = (1 − p)².
        var both = 0
        for i in stride(from: 0, to: n - 1, by: 2) where y[i] != 0 && y[i + 1] != 0 { both += 1 }
        let pairs = Double(n / 2), q = Double(1 - p) * Double(1 - p)
        #expect(Swift.abs(Double(both) / pairs - q) < 5 * (q * (1 - q) / pairs).squareRoot(), "pairs kept \(both)")
        #expect(y.last != nil && y.contains(0))
    }

    @Test func sameSeedSameMask() {
        var rng = RandomGenerator(seed: 52)
        let x = Tensor.normal([3, 50_001], using: &rng) // large enough to be split over threads
        var a = RandomGenerator(seed: 7), b = RandomGenerator(seed: 7), c = RandomGenerator(seed: 8)
        let ya = x.dropout(probability: 0.5, generator: &a).values
        let yb = x.dropout(probability: 0.5, generator: &b).values
        let yc = x.dropout(probability: 0.5, generator: &c).values
        #expect(ya == yb)
        #expect(ya != yc)
        #expect(a.stateWords == b.stateWords && a.stateWords != RandomGenerator(seed: 7).stateWords)
        // The generator advanced, so the next call draws a new mask.
        #expect(x.dropout(probability: 0.5, generator: &a).values != ya)
    }

    @Test func gradientIsMaskTimesScale() {
        var rng = RandomGenerator(seed: 53)
        let x = Tensor.uniform([3, 1001], low: 0.5, high: 1.5, using: &rng, requiresGrad: true) // never 0
        let g = Tensor.normal([3, 1001], using: &rng)
        let p: Float = 0.25, scale = 1 / (1 - p)
        let y = x.dropout(probability: p, generator: &rng)
        #expect(y.isRecorded)
        y.backward(gradient: g)
        let grad = x.grad!.values, out = y.values
        let expected = (0..<x.count).map { out[$0] != 0 ? g.data[$0] * scale : 0 }
        #expect(grad == expected)
        #expect((0..<x.count).allSatisfy { out[$0] == 0 || out[$0] == x.data[$0] * scale })
    }

    @Test func dropoutGradientCheck() {
        var rng = RandomGenerator(seed: 54)
        let x = Tensor.normal([3, 7], using: &rng, requiresGrad: true)
        let report = GradCheck.run([x]) { t in
            var fixed = RandomGenerator(seed: 3) // the same mask on every evaluation
            return t[0].dropout(probability: 0.4, generator: &fixed)
        }
        #expect(report.passed, "\(report)")
    }

    @Test func zeroProbabilityIsIdentity() {
        let x = Tensor([1, 2, 3], requiresGrad: true)
        var rng = RandomGenerator(seed: 55)
        let before = rng.stateWords
        #expect(x.dropout(probability: 0, generator: &rng) === x)
        #expect(x.dropPath(probability: 0, generator: &rng) === x)
        #expect(rng.stateWords == before)
    }

    @Test func nothingRecordedWithoutGradient() {
        var rng = RandomGenerator(seed: 56)
        let frozen = Tensor.ones([4, 5])
        #expect(!frozen.dropout(probability: 0.5, generator: &rng).isRecorded)
        let trainable = Tensor.ones([4, 5], requiresGrad: true)
        let y = Autograd.withNoGrad { trainable.dropout(probability: 0.5, generator: &rng) }
        #expect(!y.isRecorded && y.values.allSatisfy { $0 == 0 || $0 == 2 })
    }

    @Test func dropPathDropsWholeSamples() {
        var rng = RandomGenerator(seed: 57)
        let samples = 300, perSample = 3 * 5
        let x = Tensor.uniform([samples, 3, 5], low: 0.5, high: 1.5, using: &rng)
        let p: Float = 0.3, scale = 1 / (1 - p)
        let y = x.dropPath(probability: p, generator: &rng).values
        var kept = 0
        for s in 0..<samples {
            let range = s * perSample..<(s + 1) * perSample
            let dropped = range.allSatisfy { y[$0] == 0 }
            let scaled = range.allSatisfy { y[$0] == x.data[$0] * scale }
            #expect(dropped != scaled, "sample \(s) is partly dropped")
            if scaled { kept += 1 }
        }
        // 300 Bernoulli(0.7) draws: 210 ± 5σ (σ ≈ 7.9).
        #expect(Swift.abs(kept - 210) < 40, "kept \(kept) of \(samples)")
    }

    /// Samples larger than a thread chunk, so chunk boundaries fall inside samples.
    @Test func dropPathLargeSamplesForwardAndBackward() {
        var rng = RandomGenerator(seed: 58)
        let shape = [6, 7, 3001], perSample = 7 * 3001
        let x = Tensor.normal(shape, using: &rng, requiresGrad: true)
        let g = Tensor.normal(shape, using: &rng)
        var generator = RandomGenerator(seed: 9), twin = generator
        let y = x.dropPath(probability: 0.5, generator: &generator)
        let again = x.dropPath(probability: 0.5, generator: &twin)
        #expect(y.values == again.values && generator.stateWords == twin.stateWords)
        y.backward(gradient: g)
        let out = y.values, grad = x.grad!.values
        var keptSamples = 0
        for s in 0..<6 {
            let range = s * perSample..<(s + 1) * perSample
            let keep = out[range.lowerBound] != 0
            if keep { keptSamples += 1 }
            #expect(range.allSatisfy { out[$0] == (keep ? x.data[$0] * 2 : 0) }, "sample \(s) forward")
            #expect(range.allSatisfy { grad[$0] == (keep ? g.data[$0] * 2 : 0) }, "sample \(s) gradient")
        }
        #expect(keptSamples > 0 && keptSamples < 6) // seed 9 keeps some samples and drops others
    }

    @Test func dropPathGradientCheck() {
        var rng = RandomGenerator(seed: 59)
        let x = Tensor.normal([5, 3, 7], using: &rng, requiresGrad: true)
        var probe = RandomGenerator(seed: 4)
        let kept = Autograd.withNoGrad { x.dropPath(probability: 0.4, generator: &probe) }.values.filter { $0 != 0 }.count
        #expect(kept > 0 && kept < x.count) // the fixed mask keeps some samples and drops others
        let report = GradCheck.run([x]) { t in
            var fixed = RandomGenerator(seed: 4)
            return t[0].dropPath(probability: 0.4, generator: &fixed)
        }
        #expect(report.passed, "\(report)")
    }
}
