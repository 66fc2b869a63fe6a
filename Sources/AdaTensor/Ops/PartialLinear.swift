// PaCA's partial-connection linear (Woo et al., ICLR 2025, arXiv 2503.01905, Eqs. 7–9): a frozen weight
// W whose input columns idx are the trainable partial connections, re-parameterised as scale·P.
//
//   y = x·W_effᵀ + b,   W_eff = W with W_eff[:, idx[j]] = scale·P[:, j]
//
// The caller writes scale·P into W's idx columns before calling (the op reads W as W_eff, so the
// forward is one ordinary GEMM: no adapter branch). Backward:
//   dx += gy·W_eff                       (full weight, as for any frozen linear)
//   dP += scale·gyᵀ·x[..., idx]          (a [N, r] GEMM on the gathered columns)
//   db += Σ_rows gy                      (only if the bias trains; PaCA freezes it)
// Only x_idx [M, r] is kept for the weight gradient; the backward closure never captures x itself, so
// when x needs no gradient its storage is freed right after the forward (when it does need one, the
// graph holds x as an input anyway, exactly as for a frozen linear).
//
// Legend: M rows (all tokens of the batch), K in features, N out features, r partial columns.

extension Tensor {
    /// y = x·W_effᵀ + bias over the last axis, x [..., K], weight [N, K] (must already hold
    /// W_eff[:, idx[j]] = scale·P[:, j]), partial P [N, r], columns idx [r] distinct in 0..<K.
    /// The weight must be frozen (its gradient would need the full x, which this op does not keep).
    public func partialLinear(weight: Tensor, bias: Tensor?, columns idx: [Int], partial p: Tensor, scale: Float) -> Tensor {
        let x = self
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                     "partialLinear: input \(x.shape) does not match weight \(weight.shape)")
        let k = weight.shape[1], n = weight.shape[0], m = x.count / max(k, 1), r = idx.count
        precondition(p.shape == [n, r], "partialLinear: P \(p.shape) must be [\(n), \(r)] (out features × \(r) columns)")
        if let bias { precondition(bias.shape == [n], "partialLinear: bias \(bias.shape) for \(n) outputs") }
        precondition(!(Autograd.isEnabled && weight.needsGrad),
                     "partialLinear: the weight \(weight.shape) must be frozen (PaCA trains P only; a weight gradient would need the full input)")
        Self.checkPartialColumns(idx, inFeatures: k)
        precondition(Self.partialColumnsInSync(weight, columns: idx, partial: p, scale: scale),
                     "partialLinear: weight columns \(idx) do not hold scale·P — write them before the forward")

        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [n])
        Self.affineForward(x, weight: weight, bias: bias, into: y, rows: m)

        let recording = Autograd.isEnabled && (x.needsGrad || p.needsGrad || bias?.needsGrad == true)
        guard recording else { return y }
        // What the backward keeps: the r gathered columns (only if P learns), W, P, and x only as the
        // gradient target when x needs one — never x's values for the weight gradient.
        let gathered: Tensor? = p.needsGrad ? Self.gatherColumns(x, columns: idx, rows: m) : nil
        let inputTarget: Tensor? = x.needsGrad ? x : nil
        y.record("partial_linear", [x, p] + (bias.map { [$0] } ?? [])) { gy in
            inputTarget?.accumulateGrad { gx in
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: n, a: gy.data, lda: n,
                           b: weight.data, ldb: k, beta: 1, c: gx, ldc: k)
            }
            if let gathered {
                p.accumulateGrad { gp in
                    BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: r, k: m, alpha: scale, a: gy.data, lda: n,
                               b: gathered.data, ldb: r, beta: 1, c: gp, ldc: r)
                }
            }
            bias?.accumulateGrad { gb in Vector.addColumnSums(gy.data, rows: m, cols: n, into: gb) }
        }
        return y
    }

    /// x [M, K] (any leading shape) → x[..., idx] as [M, r].
    public static func gatherColumns(_ x: Tensor, columns idx: [Int], rows m: Int) -> Tensor {
        let k = x.shape.last ?? 1, r = idx.count
        precondition(m * k == x.count, "gatherColumns: \(m) rows of \(k) do not cover input \(x.shape)")
        let out = Tensor(uninitializedShape: [m, r])
        let src = x.data, dst = out.data
        idx.withUnsafeBufferPointer { columns in
            // Strided reads (r per row): parallel only once there is real work.
            Parallel.chunks(m, minimumChunk: max(1, 32_768 / max(r, 1))) { rows in
                for row in rows {
                    let s = src + row * k, d = dst + row * r
                    for j in 0..<r { d[j] = s[columns[j]] }
                }
            }
        }
        return out
    }

    /// Preconditions on a column list: 1 ≤ r ≤ K, every index in 0..<K, no repeats.
    public static func checkPartialColumns(_ idx: [Int], inFeatures k: Int) {
        precondition(!idx.isEmpty && idx.count <= k, "partial columns: \(idx.count) columns for \(k) input features (need 1…\(k))")
        var seen = [Bool](repeating: false, count: k)
        for c in idx {
            precondition(c >= 0 && c < k, "partial columns: index \(c) outside 0..<\(k)")
            precondition(!seen[c], "partial columns: index \(c) appears twice in \(idx)")
            seen[c] = true
        }
    }

    /// True when weight[:, idx[j]] holds exactly scale·P[:, j] (bit patterns, so NaNs written by the
    /// same product compare equal). O(N·r).
    public static func partialColumnsInSync(_ weight: Tensor, columns idx: [Int], partial p: Tensor, scale: Float) -> Bool {
        let k = weight.shape[1], n = weight.shape[0], r = idx.count
        let w = weight.data, pd = p.data
        for o in 0..<n {
            for j in 0..<r where w[o * k + idx[j]].bitPattern != (scale * pd[o * r + j]).bitPattern { return false }
        }
        return true
    }

    /// weight[:, idx[j]] = scale·P[:, j] — the sync PaCA performs before every forward. O(N·r).
    public static func writePartialColumns(into weight: Tensor, columns idx: [Int], partial p: Tensor, scale: Float) {
        precondition(weight.rank == 2 && p.shape == [weight.shape[0], idx.count],
                     "writePartialColumns: P \(p.shape) for weight \(weight.shape) and \(idx.count) columns")
        checkPartialColumns(idx, inFeatures: weight.shape[1])
        let k = weight.shape[1], n = weight.shape[0], r = idx.count
        let w = weight.data, pd = p.data
        for o in 0..<n {
            for j in 0..<r { w[o * k + idx[j]] = scale * pd[o * r + j] }
        }
    }
}
