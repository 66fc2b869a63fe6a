// Matrix products on cblas_sgemm: linear layers, 2-D and batched matmul (including a different
// weight per sample — AdaRoute's routed projections), with their backward passes beside them.
//
// Legend: M rows (tokens), K inputs, N outputs, B batch.

extension Tensor {
    /// y = x·Wᵀ + b over the last axis: x [..., K], weight [N, K] (PyTorch layout), bias [N]; with a
    /// residual [..., N], y = residual + x·Wᵀ + b in the same buffer (a transformer block's residual
    /// connection without the separate add's pass and buffer).
    public func linear(_ weight: Tensor, bias: Tensor? = nil, residual: Tensor? = nil) -> Tensor {
        let x = self
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                     "linear: input \(x.shape) does not match weight \(weight.shape)")
        let k = weight.shape[1], n = weight.shape[0], m = x.count / max(k, 1)
        let shape = Array(x.shape.dropLast()) + [n]
        if let bias { precondition(bias.shape == [n], "linear: bias \(bias.shape) for \(n) outputs") }
        if let residual { precondition(residual.shape == shape, "linear: residual \(residual.shape) for output \(shape)") }
        let y = Tensor(uninitializedShape: shape)
        Self.affineForward(x, weight: weight, bias: bias, residual: residual, into: y, rows: m)
        y.record("linear", [x, weight] + [bias, residual].compactMap { $0 }) { gy in
            if let residual, !residual.takeGrad(gy) { residual.accumulateGrad(gy) }
            Self.affineBackward(gy, x: x, weight: weight, bias: bias, rows: m)
        }
        return y
    }

    /// gelu(x·Wᵀ + b), exact erf form. Without a recorded gradient (inference) the GELU runs inside the GEMM's
    /// tiles (PackedGEMM); with one it is `linear` then `gelu`, whose backward needs the pre-activation.
    public func linearGELU(_ weight: Tensor, bias: Tensor? = nil) -> Tensor {
        // A shape that does not fit falls through to `linear`, whose preconditions name it.
        guard weight.rank == 2, shape.last == weight.shape[1] else { return linear(weight, bias: bias).gelu() }
        let k = weight.shape[1], n = weight.shape[0], m = count / Swift.max(k, 1)
        let records = Autograd.isEnabled && (needsGrad || weight.needsGrad || bias?.needsGrad == true)
        guard !records, PackedGEMM.handles(rows: m, outputs: n, inputs: k) else {
            return linear(weight, bias: bias).gelu()
        }
        if let bias { precondition(bias.shape == [n], "linear: bias \(bias.shape) for \(n) outputs") }
        let y = Tensor(uninitializedShape: Array(shape.dropLast()) + [n])
        PackedGEMM.linear(rows: m, x: data, weight: weight, bias: bias?.data, residual: nil, activation: .gelu,
                          into: y.data)
        return y
    }

    /// y [M, N] = (residual +) x [M, K]·Wᵀ + b — the affine part shared by every linear-shaped op (linear,
    /// LoRA, convolutions). The rows start as residual + b (either, or neither) and the GEMM accumulates onto
    /// them (beta 1).
    public static func affineForward(_ x: Tensor, weight: Tensor, bias: Tensor?, residual: Tensor? = nil,
                                     into y: Tensor, rows m: Int) {
        let k = weight.shape[1], n = weight.shape[0]
        let out = y.data, b = bias?.data, r = residual?.data
        if PackedGEMM.handles(rows: m, outputs: n, inputs: k) {
            // A 1×1 convolution's weight is [N, K, 1, 1]: the same floats as [N, K].
            let matrix = weight.rank == 2 ? weight : weight.reshaped([n, k])
            PackedGEMM.linear(rows: m, x: x.data, weight: matrix, bias: b, residual: r, into: out)
            return
        }
        if b != nil || r != nil {
            Parallel.chunks(m, minimumChunk: Swift.max(1, 16384 / Swift.max(n, 1))) { rows in
                for row in rows {
                    let o = out + row * n
                    switch (r, b) {
                    case let (r?, b?): let src = r + row * n; for j in 0..<n { o[j] = src[j] + b[j] }
                    case let (r?, nil): o.update(from: r + row * n, count: n)
                    case let (nil, b?): o.update(from: b, count: n)
                    case (nil, nil): break
                    }
                }
            }
        }
        BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: n, k: k, a: x.data, lda: k,
                   b: weight.data, ldb: k, beta: b == nil && r == nil ? 0 : 1, c: out, ldc: n)
    }

    /// The backward of `affineForward`: dx += gy·W ; dW += gyᵀ·x ; db += Σ_rows gy (each only if needed).
    public static func affineBackward(_ gy: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, rows m: Int) {
        let k = weight.shape[1], n = weight.shape[0]
        x.accumulateGrad { gx in
            BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: n, a: gy.data, lda: n,
                       b: weight.data, ldb: k, beta: 1, c: gx, ldc: k)
        }
        weight.accumulateGrad { gw in
            BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: m, a: gy.data, lda: n,
                       b: x.data, ldb: k, beta: 1, c: gw, ldc: k)
        }
        bias?.accumulateGrad { gb in Vector.addColumnSums(gy.data, rows: m, cols: n, into: gb) }
    }

    /// y [B, M, N] = x [B, M, K]·W_bᵀ with one weight per sample mixed from a bank of experts,
    /// W_b = Σ_e weights[b, e]·bank[e]: bank [E, N, K], weights [B, E] (AdaRoute's routed projections).
    /// With a gradient to record it is the mixing matmul then the batched matmul (their backward passes);
    /// without one, PackedGEMM mixes the packed experts and runs all samples' products in one region.
    public func routedLinear(bank: Tensor, weights: Tensor) -> Tensor {
        precondition(rank == 3 && bank.rank == 3 && shape[2] == bank.shape[2],
                     "routedLinear: input \(shape) does not match bank \(bank.shape) ([B, M, K] and [E, N, K])")
        precondition(weights.shape == [shape[0], bank.shape[0]],
                     "routedLinear: weights \(weights.shape) for \(shape[0]) samples and \(bank.shape[0]) experts")
        let (b, m, e, n, k) = (shape[0], shape[1], bank.shape[0], bank.shape[1], bank.shape[2])
        let records = Autograd.isEnabled && (needsGrad || bank.needsGrad || weights.needsGrad)
        guard !records, PackedGEMM.enabled else {
            let mixed = weights.matmul(bank.reshaped([e, n * k])).reshaped([b, n, k])
            return matmul(mixed, transposeOther: true)
        }
        let y = Tensor(uninitializedShape: [b, m, n])
        PackedGEMM.routedLinear(batch: b, rows: m, x: data, bank: bank, weights: weights.data, into: y.data)
        return y
    }

    /// Matrix product over the last two axes with optional transposes.
    /// - self: [..., M, K] (or [..., K, M] with transposeSelf); other: [K, N] / [N, K] shared by every
    ///   batch entry, or [..., K, N] with the same leading batch shape: one matrix per sample.
    public func matmul(_ other: Tensor, transposeSelf: Bool = false, transposeOther: Bool = false) -> Tensor {
        let a = self, b = other
        precondition(a.rank >= 2 && b.rank >= 2, "matmul needs rank ≥ 2, got \(a.shape) and \(b.shape)")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        precondition(batchB.isEmpty || batchB == batchA,
                     "matmul: batch shapes \(batchA) and \(batchB) differ (other must be 2-D or match)")
        let aRows = a.shape[a.rank - 2], aCols = a.shape[a.rank - 1]
        let bRows = b.shape[b.rank - 2], bCols = b.shape[b.rank - 1]
        let (m, k) = transposeSelf ? (aCols, aRows) : (aRows, aCols)
        let (kb, n) = transposeOther ? (bCols, bRows) : (bRows, bCols)
        precondition(k == kb, "matmul: inner sizes differ: \(a.shape)\(transposeSelf ? "ᵀ" : "") · \(b.shape)\(transposeOther ? "ᵀ" : "")")
        let batch = batchA.elementCount
        let shared = batchB.isEmpty
        let y = Tensor(uninitializedShape: batchA + [m, n])
        let strideA = aRows * aCols, strideB = shared ? 0 : bRows * bCols, strideY = m * n

        if shared && !transposeSelf {
            // One GEMM over all batch rows: [B·M, K]·op(W).
            BLAS.sgemm(transposeA: false, transposeB: transposeOther, m: batch * m, n: n, k: k, a: a.data, lda: aCols,
                       b: b.data, ldb: bCols, beta: 0, c: y.data, ldc: n)
        } else {
            for i in 0..<batch {
                BLAS.sgemm(transposeA: transposeSelf, transposeB: transposeOther, m: m, n: n, k: k,
                           a: a.data + i * strideA, lda: aCols, b: b.data + i * strideB, ldb: bCols,
                           beta: 0, c: y.data + i * strideY, ldc: n)
            }
        }

        y.record("matmul", [a, b]) { gy in
            // C = op(A)·op(B): d op(A) = gC·op(B)ᵀ, d op(B) = op(A)ᵀ·gC; transposes fold into GEMM flags.
            a.accumulateGrad { ga in
                for i in 0..<batch {
                    let g = gy.data + i * strideY, bp = b.data + i * strideB, out = ga + i * strideA
                    if transposeSelf { // dA [K, M] = op(B)·gCᵀ
                        BLAS.sgemm(transposeA: transposeOther, transposeB: true, m: k, n: m, k: n, a: bp, lda: bCols,
                                   b: g, ldb: n, beta: 1, c: out, ldc: aCols)
                    } else {           // dA [M, K] = gC·op(B)ᵀ
                        BLAS.sgemm(transposeA: false, transposeB: !transposeOther, m: m, n: k, k: n, a: g, lda: n,
                                   b: bp, ldb: bCols, beta: 1, c: out, ldc: aCols)
                    }
                }
            }
            b.accumulateGrad { gb in
                if shared && !transposeSelf {
                    let rows = batch * m
                    if transposeOther { // dB [N, K] = gCᵀ·A
                        BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: rows, a: gy.data, lda: n,
                                   b: a.data, ldb: aCols, beta: 1, c: gb, ldc: bCols)
                    } else {            // dB [K, N] = Aᵀ·gC
                        BLAS.sgemm(transposeA: true, transposeB: false, m: k, n: n, k: rows, a: a.data, lda: aCols,
                                   b: gy.data, ldb: n, beta: 1, c: gb, ldc: bCols)
                    }
                    return
                }
                for i in 0..<batch {
                    let g = gy.data + i * strideY, ap = a.data + i * strideA, out = gb + i * strideB
                    if transposeOther { // dB [N, K] = gCᵀ·op(A)
                        BLAS.sgemm(transposeA: true, transposeB: transposeSelf, m: n, n: k, k: m, a: g, lda: n,
                                   b: ap, ldb: aCols, beta: 1, c: out, ldc: bCols)
                    } else {            // dB [K, N] = op(A)ᵀ·gC
                        BLAS.sgemm(transposeA: !transposeSelf, transposeB: false, m: k, n: n, k: m, a: ap, lda: aCols,
                                   b: g, ldb: n, beta: 1, c: out, ldc: bCols)
                    }
                }
            }
        }
        return y
    }
}
