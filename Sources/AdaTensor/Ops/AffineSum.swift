// (sa⊙a + ha) + (sb⊙b + hb) with per-channel scales and shifts over the last axis, in one pass: the
// residual tails of adapters (AdaRoute: x + γ⊙LN(x), and (ls⊙y + lb) + (rs⊙x + rb)) would otherwise take up to
// five elementwise passes and four temporaries forward, and as many backward. The result is bit-identical to
// the unfused expression (a missing scale multiplies by 1, a missing shift adds 0: both exact).
//
// Legend: a, b [..., D]; sa, ha, sb, hb [D] or absent.

extension Tensor {
    /// self + s⊙b: a residual plus a per-channel scaled branch.
    public func adding(_ b: Tensor, scaledBy s: Tensor) -> Tensor {
        Tensor.affineSum(self, scale: nil, shift: nil, b, scale: s, shift: nil)
    }

    public static func affineSum(_ a: Tensor, scale sa: Tensor?, shift ha: Tensor?,
                                 _ b: Tensor, scale sb: Tensor?, shift hb: Tensor?) -> Tensor {
        precondition(a.shape == b.shape && a.rank >= 1, "affineSum: operands \(a.shape) and \(b.shape) differ")
        let d = a.shape[a.rank - 1], rows = a.count / Swift.max(d, 1)
        for v in [sa, ha, sb, hb] { if let v { precondition(v.shape == [d], "affineSum: \(v.shape) is not [\(d)]") } }
        let ones = Storage(uninitializedCount: d), zeros = Storage(zeroedCount: d)
        ones.pointer.update(repeating: 1, count: d)
        let psa = sa?.data ?? ones.pointer, pha = ha?.data ?? zeros.pointer
        let psb = sb?.data ?? ones.pointer, phb = hb?.data ?? zeros.pointer
        let y = Tensor(uninitializedShape: a.shape)
        let pa = a.data, pb = b.data, py = y.data
        let minimumRows = Swift.max(1, 16384 / Swift.max(d, 1))
        Parallel.chunks(rows, minimumChunk: minimumRows) { range in
            for r in range {
                let x = pa + r * d, z = pb + r * d, out = py + r * d
                for j in 0..<d { out[j] = (psa[j] * x[j] + pha[j]) + (psb[j] * z[j] + phb[j]) }
            }
        }
        let parameters = [sa, ha, sb, hb].compactMap { $0 }
        y.record("affine_sum", [a, b] + parameters) { gy in
            let g = gy.data
            // Parameters first (they read g, which an input may take over below): Σ_rows g⊙a, Σ g, Σ g⊙b,
            // Σ g as per-thread partial sums, added in slot order.
            if parameters.contains(where: { $0.needsGrad }) {
                let threads = Runtime.threads, partial = Storage(zeroedCount: threads * 4 * d)
                Parallel.indexedChunks(rows, slots: threads, minimumChunk: minimumRows) { slot, range in
                    let gsa = partial.pointer + slot * 4 * d, gha = gsa + d, gsb = gha + d, ghb = gsb + d
                    for r in range {
                        let gr = g + r * d, x = pa + r * d, z = pb + r * d
                        for j in 0..<d {
                            gsa[j] += gr[j] * x[j]; gha[j] += gr[j]
                            gsb[j] += gr[j] * z[j]; ghb[j] += gr[j]
                        }
                    }
                }
                for (k, parameter) in [sa, ha, sb, hb].enumerated() {
                    guard let parameter, parameter.needsGrad else { continue }
                    parameter.accumulateGrad { dst in
                        for slot in 0..<threads { Vector.add(partial.pointer + (slot * 4 + k) * d, into: dst, count: d) }
                    }
                }
            }
            // Inputs: s⊙g, or g itself — passed by reference to the first unscaled input that has no gradient yet.
            var handedOver = false
            for (input, scale) in [(a, sa), (b, sb)] where input.needsGrad {
                if let scale {
                    let s = scale.data
                    input.accumulateGrad { dst in
                        Parallel.chunks(rows, minimumChunk: minimumRows) { range in
                            for r in range { let o = dst + r * d, gr = g + r * d; for j in 0..<d { o[j] += s[j] * gr[j] } }
                        }
                    }
                } else if !handedOver && input.takeGrad(gy) {
                    handedOver = true
                } else {
                    input.accumulateGrad(adding: g)
                }
            }
        }
        return y
    }
}
