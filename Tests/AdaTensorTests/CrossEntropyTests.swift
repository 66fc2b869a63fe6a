import AdaTensor
import AdaTestSupport
import Testing
#if canImport(Glibc)
import Glibc
#else
import Darwin
#endif

@Suite("Pixel-wise cross-entropy")
struct CrossEntropyTests {
    /// Mean of −log softmax[label] over non-ignored pixels, in Double with explicit loops (NCHW).
    static func naiveLoss(_ logits: Tensor, _ labels: [Int32], ignore: Int32 = 255) -> Double {
        let images = logits.shape[0], classes = logits.shape[1], plane = logits.shape.dropFirst(2).reduce(1, *)
        var total = 0.0, valid = 0
        for b in 0..<images {
            for p in 0..<plane where labels[b * plane + p] != ignore {
                let z = (0..<classes).map { Double(logits.data[(b * classes + $0) * plane + p]) }
                let top = z.max()!
                let lse = top + log(z.map { exp($0 - top) }.reduce(0, +))
                total += lse - z[Int(labels[b * plane + p])]
                valid += 1
            }
        }
        return valid == 0 ? 0 : total / Double(valid)
    }

    /// Labels in 0..<classes with every `ignoreEvery`-th pixel set to the ignore index.
    static func labels(_ count: Int, classes: Int, ignoreEvery: Int, seed: UInt64) -> [Int32] {
        var rng = RandomGenerator(seed: seed)
        return (0..<count).map { i in i % ignoreEvery == 1 ? 255 : Int32(rng.next() % UInt64(classes)) }
    }

    @Test func onePixelByHand() throws {
        // softmax([0, ln 3]) = [1/4, 3/4]; label 1 → −ln(3/4).
        let expected = -log(Float(0.75))
        let classification = Tensor(shape: [1, 2], values: [0, log(3)])
        #expect(abs(try classification.crossEntropy(labels: [1]).item - expected) < 1e-6)
        let image = Tensor(shape: [1, 2, 1, 1], values: [0, log(3)])
        #expect(abs(try image.crossEntropy(labels: [1]).item - expected) < 1e-6)
    }

    /// Ignored pixels count neither in the sum nor in the denominator.
    @Test func meanOverValidPixelsOnly() throws {
        // One image, 2 classes, 3 pixels (NCHW: class 0 plane, then class 1 plane).
        // Pixel 0: [0, ln 3] label 1 → ln(4/3); pixel 1: [0, 0] label 0 → ln 2; pixel 2: ignored (huge logit).
        let logits = Tensor(shape: [1, 2, 1, 3], values: [0, 0, 50,
                                                         log(3), 0, -50])
        let loss = try logits.crossEntropy(labels: [1, 0, 255]).item
        let expected = Float((log(4.0 / 3.0) + log(2.0)) / 2)
        #expect(abs(loss - expected) < 1e-6, "loss \(loss), expected \(expected)")
        // A custom ignore index: now label 0 is ignored and 255 would be out of range.
        let custom = try logits.crossEntropy(labels: [1, 0, 0], ignoreIndex: 0).item
        #expect(abs(custom - Float(log(4.0 / 3.0))) < 1e-6)
    }

    @Test func forwardMatchesNaiveReference() throws {
        var rng = RandomGenerator(seed: 31)
        let logits = Tensor.normal([3, 5, 7, 9], std: 3, using: &rng)
        let labels = Self.labels(3 * 63, classes: 5, ignoreEvery: 4, seed: 32)
        let loss = try logits.crossEntropy(labels: labels).item
        let expected = Self.naiveLoss(logits, labels)
        #expect(abs(Double(loss) - expected) < 1e-5 * max(1, expected), "loss \(loss), expected \(expected)")
    }

    /// Enough pixels to split across threads, with pieces crossing image boundaries.
    @Test func largeInputMatchesNaiveReference() throws {
        var rng = RandomGenerator(seed: 33)
        let logits = Tensor.normal([3, 4, 37, 41], std: 2, using: &rng, requiresGrad: true)
        let labels = Self.labels(3 * 37 * 41, classes: 4, ignoreEvery: 7, seed: 34)
        let loss = try logits.crossEntropy(labels: labels)
        let expected = Self.naiveLoss(logits, labels)
        #expect(abs(Double(loss.item) - expected) < 1e-5 * max(1, expected), "loss \(loss.item), expected \(expected)")
        // Every valid pixel's gradient sums to 0 over classes; ignored pixels get none.
        loss.backward()
        let g = try #require(logits.grad)
        let plane = 37 * 41
        for b in 0..<3 {
            for p in stride(from: 0, to: plane, by: 97) {
                let column = (0..<4).map { g.data[(b * 4 + $0) * plane + p] }
                if labels[b * plane + p] == 255 { #expect(column == [0, 0, 0, 0]) }
                else { #expect(abs(column.reduce(0, +)) < 1e-7) }
            }
        }
    }

    /// [N, C] logits are the same loss as the [1, C, N] image holding the same pixels.
    @Test func classificationLayoutMatchesImageLayout() throws {
        var rng = RandomGenerator(seed: 35)
        let rows = Tensor.normal([6, 4], using: &rng)
        let image = Tensor(uninitializedShape: [1, 4, 6])
        for n in 0..<6 { for c in 0..<4 { image.data[c * 6 + n] = rows.data[n * 4 + c] } }
        let labels: [Int32] = [0, 3, 255, 2, 1, 3]
        let a = try rows.crossEntropy(labels: labels).item, b = try image.crossEntropy(labels: labels).item
        #expect(abs(a - b) < 1e-6, "\(a) vs \(b)")
    }

    @Test func allIgnoredGivesZeroLossAndGradient() throws {
        var rng = RandomGenerator(seed: 36)
        let logits = Tensor.normal([2, 3, 2, 2], using: &rng, requiresGrad: true)
        let loss = try logits.crossEntropy(labels: [Int32](repeating: 255, count: 8))
        #expect(loss.item == 0)
        loss.backward()
        let g = try #require(logits.grad)
        #expect(g.values.allSatisfy { $0 == 0 })
    }

    @Test func gradientWithIgnoredPixelsNCHW() {
        var rng = RandomGenerator(seed: 37)
        let logits = Tensor.normal([2, 3, 4, 5], using: &rng, requiresGrad: true)
        let labels = Self.labels(2 * 20, classes: 3, ignoreEvery: 5, seed: 38)
        #expect(labels.contains(255) && labels.contains { $0 != 255 })
        let report = GradCheck.run([logits]) { try! $0[0].crossEntropy(labels: labels) }
        #expect(report.passed, "\(report)")
    }

    @Test func gradientWithIgnoredRowsClassification() {
        var rng = RandomGenerator(seed: 39)
        let logits = Tensor.normal([6, 4], using: &rng, requiresGrad: true)
        let labels: [Int32] = [2, 255, 0, 3, 255, 1]
        let report = GradCheck.run([logits]) { try! $0[0].crossEntropy(labels: labels) }
        #expect(report.passed, "\(report)")
    }

    @Test func outOfRangeLabelThrows() {
        let logits = Tensor.zeros([1, 3, 2, 2])
        let error = #expect(throws: TensorError.self) { try logits.crossEntropy(labels: [0, 2, 7, 1]) }
        guard case .labelOutOfRange(let value, let classes, let pixel)? = error else {
            Issue.record("expected labelOutOfRange, got \(String(describing: error))"); return
        }
        #expect(value == 7 && classes == 3 && pixel == 2)
        #expect(error!.description.contains("7") && error!.description.contains("0..<3"), "\(error!)")
        // Negative labels are out of range too (unless they are the ignore index).
        #expect(throws: TensorError.self) { try logits.crossEntropy(labels: [0, -1, 1, 1]) }
        #expect(throws: Never.self) { try logits.crossEntropy(labels: [0, -1, 1, 1], ignoreIndex: -1) }
        // The first offending pixel is reported, also in a later image.
        let two = Tensor.zeros([2, 3, 1, 2])
        let second = #expect(throws: TensorError.self) { try two.crossEntropy(labels: [0, 1, 2, 9]) }
        guard case .labelOutOfRange(9, 3, 3)? = second else {
            Issue.record("expected label 9 at pixel 3, got \(String(describing: second))"); return
        }
    }

    @Test func wrongLabelCountThrows() {
        let logits = Tensor.zeros([2, 3, 4, 5])
        let error = #expect(throws: TensorError.self) { try logits.crossEntropy(labels: [Int32](repeating: 0, count: 39)) }
        guard case .shapeMismatch(let message)? = error else {
            Issue.record("expected shapeMismatch, got \(String(describing: error))"); return
        }
        #expect(message.contains("39") && message.contains("40"), "\(message)")
    }

    /// Logits around ±1e3 would overflow exp without the max shift.
    @Test func largeLogitsDoNotOverflow() throws {
        // [1000, 1002], label 0 → ln(1 + e²).
        let pair = Tensor(shape: [1, 2], values: [1000, 1002], requiresGrad: true)
        let loss = try pair.crossEntropy(labels: [0])
        #expect(abs(loss.item - Float(log(1 + exp(2.0)))) < 1e-4, "\(loss.item)")
        loss.backward()
        let g = try #require(pair.grad).values
        // softmax = exp(z − lse) with lse ≈ 1002.13 rounded to float32 (ulp 6e-5 there): ~1e-4 is the best
        // any float32 implementation can do at this magnitude.
        let p0 = Float(1 / (1 + exp(2.0)))
        #expect(abs(g[0] - (p0 - 1)) < 1e-4 && abs(g[1] - (1 - p0)) < 1e-4, "\(g)")

        var rng = RandomGenerator(seed: 40)
        let logits = Tensor.normal([2, 3, 2, 3], std: 1000, using: &rng, requiresGrad: true)
        let labels = Self.labels(12, classes: 3, ignoreEvery: 5, seed: 41)
        let big = try logits.crossEntropy(labels: labels)
        let expected = Self.naiveLoss(logits, labels)
        #expect(big.item.isFinite && abs(Double(big.item) - expected) < 1e-4 * max(1, expected),
                "\(big.item) vs \(expected)")
        big.backward()
        #expect(try #require(logits.grad).values.allSatisfy { $0.isFinite })
    }
}
