import AdaTensor
import AdaTestSupport
import Dispatch
import Testing

@Suite("Thread pool and split GEMMs")
struct ParallelTests {
    /// Every index is visited exactly once, also when loops nest (inner loops run inline on the worker)
    /// and when several threads start loops at once (only one owns the pool; the others run inline).
    @Test func everyPieceRunsOnceNestedAndFromManyCallers() {
        let outer = 37, inner = 53
        func run() -> [Int] {
            let visits = UnsafeMutablePointer<Int>.allocate(capacity: outer * inner)
            defer { visits.deallocate() }
            visits.update(repeating: 0, count: outer * inner)
            Parallel.forEach(outer) { i in
                Parallel.forEach(inner) { j in visits[i * inner + j] += 1 }
            }
            return Array(UnsafeBufferPointer(start: visits, count: outer * inner))
        }
        #expect(run().allSatisfy { $0 == 1 })
        let callers = 4
        let results = UnsafeMutablePointer<Bool>.allocate(capacity: callers)
        defer { results.deallocate() }
        DispatchQueue.concurrentPerform(iterations: callers) { c in
            var ok = true
            for _ in 0..<50 { ok = ok && run().allSatisfy { $0 == 1 } }
            results[c] = ok
        }
        #expect((0..<callers).allSatisfy { results[$0] })
    }

    @Test func indexedChunksGiveDistinctSlotsCoveringTheRange() {
        let count = 1001
        let owner = UnsafeMutablePointer<Int>.allocate(capacity: count)
        defer { owner.deallocate() }
        owner.update(repeating: -1, count: count)
        Parallel.indexedChunks(count, slots: 2) { slot, range in
            #expect(slot >= 0 && slot < 2)
            for i in range { owner[i] = slot }
        }
        let slots = Array(UnsafeBufferPointer(start: owner, count: count))
        #expect(slots.allSatisfy { $0 >= 0 })
        #expect(slots == slots.sorted(), "chunks are contiguous and in slot order")
    }

    /// GEMMs large enough to be split over threads (by rows, or by columns when there are few rows) equal
    /// a plain triple loop, for every transpose combination, with alpha and an accumulating beta.
    @Test(arguments: [(300, 70, 200), (40, 500, 300), (17, 9, 5)])
    func splitGemmMatchesTheDefinition(size: (Int, Int, Int)) {
        let (m, n, k) = size
        var rng = RandomGenerator(seed: 5)
        for transposeA in [false, true] {
            for transposeB in [false, true] {
                let a = Tensor.uniform([m * k], low: -1, high: 1, using: &rng)
                let b = Tensor.uniform([k * n], low: -1, high: 1, using: &rng)
                let c = Tensor.uniform([m * n], low: -1, high: 1, using: &rng)
                let c0 = c.values, av = a.values, bv = b.values
                let alpha: Float = 0.75, beta: Float = 0.5
                BLAS.sgemm(transposeA: transposeA, transposeB: transposeB, m: m, n: n, k: k, alpha: alpha,
                           a: a.data, lda: transposeA ? m : k, b: b.data, ldb: transposeB ? k : n,
                           beta: beta, c: c.data, ldc: n)
                var worst = 0.0
                for i in 0..<m {
                    for j in 0..<n {
                        var sum = 0.0
                        for p in 0..<k {
                            let x = transposeA ? av[p * m + i] : av[i * k + p]
                            let y = transposeB ? bv[j * k + p] : bv[p * n + j]
                            sum += Double(x) * Double(y)
                        }
                        let expected = Double(alpha) * sum + Double(beta) * Double(c0[i * n + j])
                        worst = max(worst, abs(Double(c.data[i * n + j]) - expected))
                    }
                }
                #expect(worst < 1e-4, "\(size) transposeA \(transposeA) transposeB \(transposeB): max error \(worst)")
            }
        }
    }
}
