// Random regularisers for training, both "inverted": kept values are scaled by 1/(1 − p) so the
// expected output equals the input and evaluation simply skips them.
//   dropout:   each element kept with probability 1 − p (nn.Dropout)
//   drop path: each sample kept or zeroed as a whole (stochastic depth, timm's drop_path)
// Both are deterministic given the generator's state, whatever the thread count.
//
// Legend: x, y [B, ...] with B samples along axis 0; N elements.

extension Tensor {
    /// Inverted dropout: y = x·mask/(1 − p), mask ~ Bernoulli(1 − p) per element. p = 0 (or an empty
    /// tensor) returns self. Draws one value from `generator`; the backward uses the saved mask.
    public func dropout(probability p: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropout: probability must be in [0, 1), got \(p) (input \(shape))")
        if p == 0 || count == 0 { return self }
        let x = self
        let n = count
        let scale = 1 / (1 - p)
        // One draw seeds a counter-based stream: the decision for element i depends only on (seed, i),
        // so threads fill disjoint ranges and the mask does not depend on how the work is split.
        let seed = generator.next()
        // Keep when 32 random bits fall below the threshold: probability threshold/2³² ≈ 1 − p.
        let threshold = UInt64(((1 - Double(p)) * 4_294_967_296).rounded())
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        // A byte per element, only when a backward will need it.
        let saveMask = Autograd.isEnabled && x.needsGrad
        let mask = [UInt8](unsafeUninitializedCapacity: saveMask ? n : 0) { buffer, initialized in
            let keep = buffer.baseAddress
            // Each 64-bit draw decides a pair of elements (2k: low half, 2k + 1: high half).
            Parallel.chunks((n + 1) / 2, minimumChunk: 8192) { pairs in
                for k in pairs {
                    let bits = dropoutBits(seed, k)
                    let i = 2 * k
                    let keepLow = bits & 0xFFFF_FFFF < threshold
                    py[i] = keepLow ? px[i] * scale : 0
                    if saveMask { keep![i] = keepLow ? 1 : 0 }
                    guard i + 1 < n else { continue }
                    let keepHigh = bits >> 32 < threshold
                    py[i + 1] = keepHigh ? px[i + 1] * scale : 0
                    if saveMask { keep![i + 1] = keepHigh ? 1 : 0 }
                }
            }
            initialized = saveMask ? n : 0
        }
        if saveMask {
            y.record("dropout", [x]) { gy in
                x.accumulateGrad { gx in
                    let pg = gy.data
                    mask.withUnsafeBufferPointer { keep in
                        let keep = keep.baseAddress!
                        Parallel.chunks(n, minimumChunk: 32768) { r in
                            for i in r { gx[i] += pg[i] * (Float(keep[i]) * scale) }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Stochastic depth (timm's drop_path): each sample along axis 0 is kept with probability 1 − p
    /// and scaled by 1/(1 − p), or zeroed as a whole. p = 0 (or an empty tensor) returns self.
    /// Draws B values from `generator`.
    public func dropPath(probability p: Float, generator: inout RandomGenerator) -> Tensor {
        precondition(p >= 0 && p < 1, "dropPath: probability must be in [0, 1), got \(p) (input \(shape))")
        precondition(rank >= 1, "dropPath needs a sample axis (axis 0), got shape \(shape)")
        if p == 0 || count == 0 { return self }
        let x = self
        let samples = shape[0], perSample = samples == 0 ? 0 : count / samples
        let keepProbability = 1 - p, scale = 1 / keepProbability
        let factors = (0..<samples).map { _ in generator.nextFloat() < keepProbability ? scale : 0 }
        let y = Tensor(uninitializedShape: shape)
        factors.withUnsafeBufferPointer { f in
            Tensor.scaleSamples(x.data, by: f.baseAddress!, perSample: perSample, count: count, into: y.data,
                                accumulate: false)
        }
        y.record("drop_path", [x]) { gy in
            x.accumulateGrad { gx in
                factors.withUnsafeBufferPointer { f in
                    Tensor.scaleSamples(gy.data, by: f.baseAddress!, perSample: perSample, count: x.count, into: gx,
                                        accumulate: true)
                }
            }
        }
        return y
    }

    /// dst = factor[b]·src (or dst += … when accumulating) for every element of sample b. The threads
    /// split the elements anywhere; each walks the sample runs inside its range.
    private static func scaleSamples(_ src: UnsafePointer<Float>, by factors: UnsafePointer<Float>, perSample: Int,
                                     count: Int, into dst: UnsafeMutablePointer<Float>, accumulate: Bool) {
        Parallel.chunks(count, minimumChunk: 32768) { r in
            var i = r.lowerBound
            while i < r.upperBound {
                let sample = i / perSample
                let end = Swift.min(r.upperBound, (sample + 1) * perSample)
                let f = factors[sample]
                if !accumulate {
                    for j in i..<end { dst[j] = src[j] * f }
                } else if f != 0 { // a dropped sample adds nothing
                    for j in i..<end { dst[j] += src[j] * f }
                }
                i = end
            }
        }
    }
}

/// 64 random bits for pair `index` of the dropout stream `seed` (SplitMix64 at position `index`).
@inline(__always)
private func dropoutBits(_ seed: UInt64, _ index: Int) -> UInt64 {
    var z = seed &+ UInt64(truncatingIfNeeded: index &+ 1) &* 0x9E37_79B9_7F4A_7C15
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
}
