// Batch normalisation over channels-last data, as PyTorch's F.batch_norm on the channel axis:
//   training: y = (x − mean_B)·rstd_B·weight + bias,  rstd_B = 1/√(var_B + eps), var_B biased (÷ R)
//             running_mean ← (1 − m)·running_mean + m·mean_B
//             running_var  ← (1 − m)·running_var  + m·var_B·R/(R − 1)   (unbiased, as PyTorch)
//   eval:     the same with the running statistics (a fixed affine map per channel).
// The running tensors are plain buffers updated in place, also under `withNoGrad` (PyTorch does the
// same: the update depends on the mode, not on autograd).
//
// Layout: x [..., C] is a rows × C matrix (R = count / C rows: B·H·W pixels, or N samples), so every
// loop walks contiguous rows with the channel index innermost (the compiler vectorises over C). The
// statistics are column sums; each thread sums its own band of rows into private partials (float
// blocks of a few rows, folded into Double), added up once at the end, so no two threads write the
// same element and the result does not depend on the thread count beyond rounding.
//
// Legend: x, y [..., C] seen as R rows × C; weight, bias, runningMean, runningVar [C];
// mean, rstd [C] (the statistics used by this call, saved for the backward).

extension Tensor {
    /// Batch norm of x [..., C] over every axis but the last (channels-last feature maps [B, H, W, C],
    /// or [N, C]). `weight` and `bias` [C] are optional (nil = 1 and 0). In training mode the batch
    /// statistics normalise and `runningMean`/`runningVar` [C] are updated in place with `momentum`;
    /// in eval mode the running statistics normalise and are left unchanged.
    public func batchNorm(weight: Tensor?, bias: Tensor?, runningMean: Tensor, runningVar: Tensor,
                          training: Bool, momentum: Float = 0.1, eps: Float = 1e-5) -> Tensor {
        let x = self
        precondition(x.rank >= 2, "batchNorm needs an input [..., C] of rank ≥ 2 (channels last), got \(x.shape)")
        let cols = x.shape[x.rank - 1]
        precondition(cols > 0, "batchNorm: the channel (last) axis of input \(x.shape) is empty")
        let rows = x.count / cols
        for (label, t) in [("weight", weight), ("bias", bias), ("runningMean", runningMean), ("runningVar", runningVar)] {
            if let t { precondition(t.shape == [cols], "batchNorm: \(label) \(t.shape) must be [\(cols)] for input \(x.shape)") }
        }
        precondition(!training || rows > 1,
                     "batchNorm: training needs more than one value per channel, input \(x.shape) has \(rows) row(s)")
        precondition(momentum >= 0 && momentum <= 1, "batchNorm: momentum must be in [0, 1], got \(momentum)")
        precondition(eps >= 0 && eps.isFinite, "batchNorm: eps must be finite and ≥ 0, got \(eps)")

        let statistics = Storage(uninitializedCount: 2 * cols) // mean [C], then rstd [C]
        let mean = statistics.pointer, rstd = statistics.pointer + cols
        let px = x.data
        if training {
            // Two passes (mean, then Σ(x − mean)²) so a large mean cannot cancel the variance.
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: cols)
            defer { sums.deallocate() }
            BatchNormKernels.columnSums(rows: rows, cols: cols, outputs: 1, into: sums) { r, acc in
                let row = px + r * cols
                for j in 0..<cols { acc[j] += row[j] }
            }
            for j in 0..<cols { mean[j] = Float(sums[j] / Double(rows)) }
            BatchNormKernels.columnSums(rows: rows, cols: cols, outputs: 1, into: sums) { r, acc in
                let row = px + r * cols
                for j in 0..<cols { let d = row[j] - mean[j]; acc[j] += d * d }
            }
            let rm = runningMean.data, rv = runningVar.data
            let unbiasedFactor = Double(rows) / Double(rows - 1)
            for j in 0..<cols {
                let variance = sums[j] / Double(rows)
                rstd[j] = Float(1 / (variance + Double(eps)).squareRoot())
                rm[j] = (1 - momentum) * rm[j] + momentum * mean[j]
                rv[j] = (1 - momentum) * rv[j] + momentum * Float(variance * unbiasedFactor)
            }
        } else {
            for j in 0..<cols {
                mean[j] = runningMean.data[j]
                rstd[j] = 1 / (runningVar.data[j] + eps).squareRoot()
            }
        }

        // y = x·scale + shift with scale = weight·rstd, shift = bias − mean·scale.
        let y = Tensor(uninitializedShape: x.shape)
        let affine = Storage(uninitializedCount: 2 * cols)
        let scale = affine.pointer, shift = affine.pointer + cols
        for j in 0..<cols {
            scale[j] = (weight?.data[j] ?? 1) * rstd[j]
            shift[j] = (bias?.data[j] ?? 0) - mean[j] * scale[j]
        }
        let py = y.data
        let minimumRows = BatchNormKernels.minimumRows(cols: cols)
        Parallel.chunks(rows, minimumChunk: minimumRows) { range in
            for r in range {
                let src = px + r * cols, dst = py + r * cols
                for j in 0..<cols { dst[j] = src[j] * scale[j] + shift[j] }
            }
        }

        y.record(training ? "batch_norm" : "batch_norm_eval", [x] + [weight, bias].compactMap { $0 }) { gy in
            let px = x.data, pg = gy.data
            let mean = statistics.pointer, rstd = statistics.pointer + cols
            let wantsX = x.needsGrad, wantsWeight = weight?.needsGrad ?? false, wantsBias = bias?.needsGrad ?? false
            // Σ_rows gy and Σ_rows gy·(x − mean): the bias and weight gradients (the latter ×rstd), and
            // in training mode the two terms of dx that flow through the batch mean and variance.
            let needsSums = wantsWeight || wantsBias || (training && wantsX)
            let sums = UnsafeMutablePointer<Double>.allocate(capacity: 2 * cols)
            defer { sums.deallocate() }
            if needsSums {
                BatchNormKernels.columnSums(rows: rows, cols: cols, outputs: 2, into: sums) { r, acc in
                    let row = px + r * cols, g = pg + r * cols, accCentered = acc + cols
                    for j in 0..<cols {
                        acc[j] += g[j]
                        accCentered[j] += g[j] * (row[j] - mean[j])
                    }
                }
            }
            let sumG = sums, sumGCentered = sums + cols
            weight?.accumulateGrad { gw in
                for j in 0..<cols { gw[j] += Float(sumGCentered[j]) * rstd[j] }
            }
            bias?.accumulateGrad { gb in
                for j in 0..<cols { gb[j] += Float(sumG[j]) }
            }
            x.accumulateGrad { gx in
                // gx = a·gy + p·(x − mean) + q per channel, a = weight·rstd. Training adds the paths
                // through mean and variance: with x̂ = (x − mean)·rstd,
                //   dx = a·(gy − Σgy/R − x̂·Σ(gy·x̂)/R)  ⇒  p = −a·rstd²·Σ(gy·(x − mean))/R, q = −a·Σgy/R.
                let coefficients = UnsafeMutablePointer<Float>.allocate(capacity: 3 * cols)
                defer { coefficients.deallocate() }
                let a = coefficients, p = coefficients + cols, q = coefficients + 2 * cols
                let inverseRows = 1 / Double(rows)
                for j in 0..<cols {
                    a[j] = (weight?.data[j] ?? 1) * rstd[j]
                    if training {
                        let r = Double(rstd[j])
                        p[j] = Float(-Double(a[j]) * r * r * sumGCentered[j] * inverseRows)
                        q[j] = Float(-Double(a[j]) * sumG[j] * inverseRows)
                    }
                }
                Parallel.chunks(rows, minimumChunk: minimumRows) { range in
                    for r in range {
                        let row = px + r * cols, g = pg + r * cols, out = gx + r * cols
                        if training {
                            for j in 0..<cols { out[j] += a[j] * g[j] + p[j] * (row[j] - mean[j]) + q[j] }
                        } else {
                            for j in 0..<cols { out[j] += a[j] * g[j] }
                        }
                    }
                }
            }
        }
        return y
    }
}

enum BatchNormKernels {
    /// Rows per thread below which splitting costs more than it saves (≈16 K elements).
    @inline(__always)
    static func minimumRows(cols: Int) -> Int { Swift.max(1, 16384 / cols) }

    /// Rows summed in float before folding into the Double partials: short float runs keep the error
    /// at a few ulp even for hundreds of thousands of rows, at 1/blockRows extra Double work.
    static let blockRows = 64

    /// totals[k·C + j] = Σ_rows of quantity k in column j, where `addRow(r, acc)` adds row r's
    /// `outputs` quantities into acc [outputs·C] (float). Threads own bands of rows with private
    /// partials, so the result needs no locking.
    @inline(__always)
    static func columnSums(rows: Int, cols: Int, outputs: Int, into totals: UnsafeMutablePointer<Double>,
                           _ addRow: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let width = outputs * cols
        let pieces = Swift.min(Runtime.threads, Swift.max(1, rows / minimumRows(cols: cols)))
        let partials = UnsafeMutablePointer<Double>.allocate(capacity: pieces * width)
        defer { partials.deallocate() }
        partials.initialize(repeating: 0, count: pieces * width)
        Parallel.forEach(pieces) { piece in
            let start = rows * piece / pieces, end = rows * (piece + 1) / pieces
            let partial = partials + piece * width
            let block = UnsafeMutablePointer<Float>.allocate(capacity: width)
            defer { block.deallocate() }
            var r = start
            while r < end {
                let blockEnd = Swift.min(end, r + blockRows)
                block.update(repeating: 0, count: width)
                while r < blockEnd { addRow(r, block); r += 1 }
                for j in 0..<width { partial[j] += Double(block[j]) }
            }
        }
        totals.update(repeating: 0, count: width)
        for piece in 0..<pieces {
            let partial = partials + piece * width
            for j in 0..<width { totals[j] += partial[j] }
        }
    }
}
