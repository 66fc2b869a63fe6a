// Dense 2-D convolution (PyTorch Conv2d, groups 1, dilation 1) and the 2×2 stride-2 transposed
// convolution (ConvTranspose2d(kernel 2, stride 2), ViTDet / Feature2Pyramid upsampling), on
// channels-last feature maps.
//
// Why channels-last: ViT tokens [B, h·w, D] already are [B, H, W, C], so no transposes around the
// heads; one input pixel's channels are contiguous, so im2col copies whole runs of kw·Cin floats and
// the GEMM output [B·Ho·Wo, Cout] *is* the NHWC result. Weights keep PyTorch's layouts so checkpoint
// names and shapes match; they are rearranged (cheaply, once per call) into GEMM order.
//
// conv2d = im2col + GEMM, in chunks of output rows so the column matrix stays within
// `convolutionScratchBytes`; the backward recomputes each chunk's columns instead of saving them.
// At stride 1, dx is itself a convolution of gy (flipped kernel, Cin/Cout swapped) that adds straight
// into dx; other strides compute gy · W' per chunk and scatter it back (col2im).
// A 1×1 stride-1 unpadded conv is a plain GEMM on the input rows (no copy).
//
// FLOPs (multiply + add = 2): conv2d forward 2·B·Ho·Wo·Cout·Cin·kh·kw; backward the same again for
// each of dx and dW. convTranspose2x2 forward 2·B·H·W·Cin·4·Cout; backward likewise per dx and dW.
//
// Legend: B batch, H×W input size, Cin/Cout channels, kh×kw kernel, s stride, p padding,
// Ho×Wo output size (Ho = (H + 2p − kh)/s + 1), M = B·Ho·Wo output pixels, K = kh·kw·Cin columns,
// column order (ky, kx, ci).

extension Tensor {
    /// Target size (bytes) of the scratch matrix a convolution builds per chunk (im2col columns, or
    /// the transposed conv's [pixels, 4·Cout] block). A chunk always holds at least 512 output pixels
    /// (and whole output rows for conv2d), so a very wide receptive field (K > 8192) may exceed it.
    public static let convolutionScratchBytes = 16 << 20

    /// x [B, H, W, Cin] (channels last), weight [Cout, Cin, kh, kw] (PyTorch Conv2d layout), bias [Cout]?
    /// → [B, Ho, Wo, Cout], Ho = (H + 2·padding − kh) / stride + 1 (floor), zero padding, groups 1, dilation 1.
    public func conv2d(_ weight: Tensor, bias: Tensor?, stride: Int = 1, padding: Int = 0) -> Tensor {
        let x = self
        precondition(x.rank == 4, "conv2d: input must be channels-last [B, H, W, Cin], got \(x.shape)")
        precondition(weight.rank == 4 && weight.shape[1] == x.shape[3],
                     "conv2d: weight \(weight.shape) must be [Cout, Cin, kh, kw] with Cin = \(x.shape[3]) for input \(x.shape)")
        precondition(stride >= 1, "conv2d: stride must be ≥ 1, got \(stride)")
        precondition(padding >= 0, "conv2d: padding must be ≥ 0, got \(padding)")
        let batch = x.shape[0], height = x.shape[1], width = x.shape[2], inChannels = x.shape[3]
        let outChannels = weight.shape[0], kh = weight.shape[2], kw = weight.shape[3]
        precondition(kh >= 1 && kw >= 1 && inChannels >= 1 && outChannels >= 1,
                     "conv2d: weight \(weight.shape) has an empty kernel or no channels")
        precondition(height + 2 * padding >= kh && width + 2 * padding >= kw,
                     "conv2d: kernel \(kh)×\(kw) is larger than the padded input \(x.shape) (padding \(padding))")
        if let bias {
            precondition(bias.shape == [outChannels], "conv2d: bias \(bias.shape) must be [Cout] = [\(outChannels)]")
        }
        let outH = (height + 2 * padding - kh) / stride + 1, outW = (width + 2 * padding - kw) / stride + 1
        let y = Tensor(uninitializedShape: [batch, outH, outW, outChannels])
        let inputs = [x, weight] + (bias.map { [$0] } ?? [])

        if kh == 1 && kw == 1 && stride == 1 && padding == 0 {
            // Every output pixel reads exactly its own input pixel: [B·H·W, Cin] · [Cout, Cin]ᵀ.
            let rows = batch * height * width
            Self.affineForward(x, weight: weight, bias: bias, into: y, rows: rows)
            y.record("conv2d", inputs) { gy in
                Self.affineBackward(gy, x: x, weight: weight, bias: bias, rows: rows)
            }
            return y
        }

        let geometry = ConvolutionGeometry(batch: batch, height: height, width: width, inChannels: inChannels,
                                           outChannels: outChannels, kh: kh, kw: kw, stride: stride,
                                           padTop: padding, padLeft: padding, outH: outH, outW: outW)
        let weightColumns = geometry.weightAsColumns(weight.data) // [Cout, K]
        geometry.forward(x: x.data, weightColumns: weightColumns.data, bias: bias?.data, y: y.data)
        y.record("conv2d", inputs) { gy in
            geometry.backward(gy: gy.data, x: x, weight: weight, weightColumns: weightColumns.data)
            bias?.accumulateGrad { gb in
                Vector.addColumnSums(gy.data, rows: geometry.outputPixels, cols: outChannels, into: gb)
            }
        }
        return y
    }

    /// Transposed conv with kernel 2, stride 2, padding 0 (ViTDet/Feature2Pyramid upsampling):
    /// x [B, H, W, Cin], weight [Cin, Cout, 2, 2] (PyTorch ConvTranspose2d layout), bias [Cout]?
    /// → [B, 2H, 2W, Cout], y[b, 2i+dy, 2j+dx, co] = bias[co] + Σ_ci x[b,i,j,ci]·weight[ci,co,dy,dx].
    public func convTranspose2x2(_ weight: Tensor, bias: Tensor?) -> Tensor {
        let x = self
        precondition(x.rank == 4, "convTranspose2x2: input must be channels-last [B, H, W, Cin], got \(x.shape)")
        precondition(weight.rank == 4 && weight.shape[0] == x.shape[3] && weight.shape[2] == 2 && weight.shape[3] == 2,
                     "convTranspose2x2: weight \(weight.shape) must be [Cin, Cout, 2, 2] with Cin = \(x.shape[3]) for input \(x.shape)")
        let batch = x.shape[0], height = x.shape[1], width = x.shape[2], inChannels = x.shape[3]
        let outChannels = weight.shape[1]
        precondition(inChannels >= 1 && outChannels >= 1, "convTranspose2x2: weight \(weight.shape) has no channels")
        if let bias {
            precondition(bias.shape == [outChannels],
                         "convTranspose2x2: bias \(bias.shape) must be [Cout] = [\(outChannels)]")
        }
        let geometry = TransposedConvolutionGeometry(batch: batch, height: height, width: width,
                                                     inChannels: inChannels, outChannels: outChannels)
        let weightBlocks = geometry.weightAsBlocks(weight.data) // [Cin, 4·Cout], columns (dy, dx, co)
        let y = Tensor(uninitializedShape: [batch, 2 * height, 2 * width, outChannels])
        geometry.forward(x: x.data, weightBlocks: weightBlocks.data, bias: bias?.data, y: y.data)
        y.record("convTranspose2x2", [x, weight] + (bias.map { [$0] } ?? [])) { gy in
            geometry.backward(gy: gy.data, x: x, weight: weight, weightBlocks: weightBlocks.data)
            bias?.accumulateGrad { gb in
                Vector.addColumnSums(gy.data, rows: 4 * geometry.inputPixels, cols: outChannels, into: gb)
            }
        }
        return y
    }
}

/// GEMM rows per chunk below which sgemm loses speed (M = 128 ran ~20 % slower than M ≥ 512 for
/// K = 18432, N = 512); a chunk holding a few huge rows may therefore exceed the scratch budget.
private let minimumChunkPixels = 512

/// The gradient buffer of `t` (zero-filled on first use), or nil when `t` needs no gradient. The
/// buffer belongs to `t.grad`, which outlives the backward closure that uses the pointer.
private func gradientBuffer(_ t: Tensor) -> UnsafeMutablePointer<Float>? {
    var buffer: UnsafeMutablePointer<Float>?
    t.accumulateGrad { buffer = $0 }
    return buffer
}

/// Sizes of one conv2d, and its im2col / col2im / GEMM passes.
struct ConvolutionGeometry {
    let batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int
    /// Zero rows above / columns left of the input; those below / right follow from outH / outW.
    let kh: Int, kw: Int, stride: Int, padTop: Int, padLeft: Int, outH: Int, outW: Int

    /// K: one output pixel's receptive field, (ky, kx, ci) order.
    var columns: Int { kh * kw * inChannels }
    /// M: rows of the GEMM.
    var outputPixels: Int { batch * outH * outW }
    /// Output rows (b, oy) in the whole batch.
    var outputRows: Int { batch * outH }

    /// Output rows per chunk: as many as fit the scratch budget, but at least `minimumChunkPixels`
    /// (GEMMs with fewer rows run measurably slower), then evened out so the last chunk is not a sliver.
    var outputRowsPerChunk: Int {
        let budget = max(Tensor.convolutionScratchBytes / (4 * outW * columns),
                         (minimumChunkPixels + outW - 1) / outW)
        return EvenChunks.size(count: outputRows, budget: budget)
    }

    /// Calls `body(rows)` for consecutive chunks of output rows (b, oy) covering the batch.
    @inline(__always)
    func forEachChunk(_ body: (Range<Int>) -> Void) {
        EvenChunks.forEach(count: outputRows, size: outputRowsPerChunk, body)
    }

    /// PyTorch [Cout, Cin, kh, kw] → [Cout, K] with columns (ky, kx, ci), matching im2col.
    func weightAsColumns(_ w: UnsafePointer<Float>) -> Tensor {
        let out = Tensor(uninitializedShape: [outChannels, columns])
        let po = out.data, taps = kh * kw, cin = inChannels, k = columns
        for co in 0..<outChannels {
            let src = w + co * k, dst = po + co * k
            for ci in 0..<cin {
                for t in 0..<taps { dst[t * cin + ci] = src[ci * taps + t] }
            }
        }
        return out
    }

    /// gw[Cout, Cin, kh, kw] += the [Cout, K] gradient permuted back to PyTorch order.
    func addColumnsGradient(_ g: UnsafePointer<Float>, into gw: UnsafeMutablePointer<Float>) {
        let taps = kh * kw, cin = inChannels, k = columns
        for co in 0..<outChannels {
            let src = g + co * k, dst = gw + co * k
            for ci in 0..<cin {
                for t in 0..<taps { dst[ci * taps + t] += src[t * cin + ci] }
            }
        }
    }

    /// Kernel columns kx whose input column ox·s − p + kx lies inside the image (may be empty when the
    /// padding is wider than the kernel).
    @inline(__always)
    func validKx(outputColumn ox: Int) -> Range<Int> {
        let x0 = ox * stride - padLeft
        let low = max(0, -x0), high = min(kw, width - x0)
        return low..<max(low, high)
    }

    /// cols[r, :] = the receptive field of output pixel (first output row)·Wo + r, zeros in the padding.
    /// For one kernel row ky the valid kx taps read consecutive input pixels, i.e. one contiguous run
    /// of (kx count)·Cin floats, so each (pixel, ky) is at most one copy plus edge zero fills.
    func gatherColumns(x: UnsafePointer<Float>, rows: Range<Int>, into cols: UnsafeMutablePointer<Float>) {
        let k = columns, cin = inChannels, runLength = kw * cin
        let pixelCount = rows.count * outW, firstPixel = rows.lowerBound * outW
        Parallel.chunks(pixelCount, minimumChunk: max(1, 32768 / k)) { pixels in
            for local in pixels {
                let pixel = firstPixel + local
                let ox = pixel % outW, row = pixel / outW, oy = row % outH, b = row / outH
                let kx = validKx(outputColumn: ox), x0 = ox * stride - padLeft
                let dst = cols + local * k
                for ky in 0..<kh {
                    let iy = oy * stride - padTop + ky
                    let run = dst + ky * runLength
                    guard iy >= 0, iy < height, !kx.isEmpty else {
                        run.update(repeating: 0, count: runLength)
                        continue
                    }
                    if kx.lowerBound > 0 { run.update(repeating: 0, count: kx.lowerBound * cin) }
                    (run + kx.lowerBound * cin).update(
                        from: x + ((b * height + iy) * width + x0 + kx.lowerBound) * cin, count: kx.count * cin)
                    if kx.upperBound < kw {
                        (run + kx.upperBound * cin).update(repeating: 0, count: (kw - kx.upperBound) * cin)
                    }
                }
            }
        }
    }

    /// gx += col2im(cols) for the output rows `rows` (cols row 0 = first pixel of rows.lowerBound):
    /// each column run is added back onto the input pixels it was copied from; padding is dropped.
    ///
    /// Output rows oy and oy' (same image) touch common input rows only if |oy − oy'|·s < kh, so the
    /// rows are cut into bands of ≥ ⌈kh/s⌉ output rows: bands two apart never share an input row.
    /// Even bands run in parallel, then odd bands — no two threads ever add into the same gx element.
    func scatterColumns(_ cols: UnsafePointer<Float>, rows: Range<Int>, into gx: UnsafeMutablePointer<Float>) {
        let k = columns, cin = inChannels, runLength = kw * cin
        let rowCount = rows.count
        func addBand(_ band: Int, of bands: Int) {
            for local in (rowCount * band / bands)..<(rowCount * (band + 1) / bands) {
                let row = rows.lowerBound + local, oy = row % outH, b = row / outH
                for ox in 0..<outW {
                    let kx = validKx(outputColumn: ox), x0 = ox * stride - padLeft
                    guard !kx.isEmpty else { continue }
                    let src = cols + (local * outW + ox) * k + kx.lowerBound * cin
                    for ky in 0..<kh {
                        let iy = oy * stride - padTop + ky
                        guard iy >= 0, iy < height else { continue }
                        Vector.add(src + ky * runLength,
                                   into: gx + ((b * height + iy) * width + x0 + kx.lowerBound) * cin,
                                   count: kx.count * cin)
                    }
                }
            }
        }
        let bandRows = (kh + stride - 1) / stride
        let bands = min(2 * Runtime.threads, rowCount / bandRows)
        if bands < 2 || Runtime.threads == 1 {
            addBand(0, of: 1)
            return
        }
        Parallel.forEach((bands + 1) / 2) { addBand(2 * $0, of: bands) }
        Parallel.forEach(bands / 2) { addBand(2 * $0 + 1, of: bands) }
    }

    /// y = im2col(x) · W'ᵀ (+ bias), or y += that with `accumulate`, chunk by chunk; each chunk's GEMM
    /// writes its own rows of y.
    func forward(x: UnsafePointer<Float>, weightColumns: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
        precondition(!accumulate || bias == nil, "conv2d: accumulate with a bias is not supported")
        let k = columns, n = outChannels
        if let bias {
            Parallel.chunks(outputPixels, minimumChunk: max(1, 65536 / n)) { pixels in
                for pixel in pixels { (y + pixel * n).update(from: bias, count: n) }
            }
        }
        let scratch = Storage(uninitializedCount: outputRowsPerChunk * outW * k)
        forEachChunk { rows in
            gatherColumns(x: x, rows: rows, into: scratch.pointer)
            BLAS.sgemm(transposeA: false, transposeB: true, m: rows.count * outW, n: n, k: k,
                       a: scratch.pointer, lda: k, b: weightColumns, ldb: k, beta: bias == nil && !accumulate ? 0 : 1,
                       c: y + rows.lowerBound * outW * n, ldc: n)
        }
    }

    /// dW' += gyᵀ · im2col(x), recomputing each chunk's columns; then dx (see `addInputGradient`).
    /// Only the gradients that are needed are computed.
    func backward(gy: UnsafePointer<Float>, x: Tensor, weight: Tensor, weightColumns: UnsafePointer<Float>) {
        let k = columns, n = outChannels
        if weight.needsGrad {
            let gradient = Tensor.zeros([n, k])
            let scratch = Storage(uninitializedCount: outputRowsPerChunk * outW * k)
            forEachChunk { rows in
                gatherColumns(x: x.data, rows: rows, into: scratch.pointer)
                BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: rows.count * outW,
                           a: gy + rows.lowerBound * outW * n, lda: n, b: scratch.pointer, ldb: k, beta: 1,
                           c: gradient.data, ldc: k)
            }
            weight.accumulateGrad { gw in addColumnsGradient(gradient.data, into: gw) }
        }
        x.accumulateGrad { gx in addInputGradient(gy: gy, weight: weight.data, weightColumns: weightColumns, gx: gx) }
    }

    /// The convolution that maps gy back onto the input at stride 1: dx[b, iy, ix, ci] =
    /// Σ_{ky, kx, co} gy[b, iy + p − ky, ix + p − kx, co] · w[co, ci, ky, kx], i.e. a conv of gy with the
    /// kernel flipped and Cin/Cout swapped, padding k − 1 − p. Nil when that padding would be negative.
    var inputGradientConvolution: ConvolutionGeometry? {
        guard stride == 1, padTop <= kh - 1, padLeft <= kw - 1 else { return nil }
        return ConvolutionGeometry(batch: batch, height: outH, width: outW, inChannels: outChannels,
                                   outChannels: inChannels, kh: kh, kw: kw, stride: 1,
                                   padTop: kh - 1 - padTop, padLeft: kw - 1 - padLeft, outH: height, outW: width)
    }

    /// dx += the input gradient. At stride 1 it is a conv of gy (im2col of gy has kh·kw·Cout columns and
    /// the GEMM adds straight into dx — no scatter). Otherwise gcols = gy · W' per chunk, then col2im.
    func addInputGradient(gy: UnsafePointer<Float>, weight: UnsafePointer<Float>, weightColumns: UnsafePointer<Float>,
                          gx: UnsafeMutablePointer<Float>) {
        if let transposed = inputGradientConvolution {
            // Flipped kernel in column order: [Cin, (ky', kx', co)] = w[co, ci, kh − 1 − ky', kw − 1 − kx'].
            let flipped = Tensor(uninitializedShape: [inChannels, transposed.columns])
            let pf = flipped.data, cout = outChannels
            for ci in 0..<inChannels {
                let dst = pf + ci * transposed.columns
                for co in 0..<cout {
                    let src = weight + (co * inChannels + ci) * kh * kw
                    for ky in 0..<kh {
                        for kx in 0..<kw { dst[((kh - 1 - ky) * kw + kw - 1 - kx) * cout + co] = src[ky * kw + kx] }
                    }
                }
            }
            withExtendedLifetime(flipped) {
                transposed.forward(x: gy, weightColumns: pf, bias: nil, y: gx, accumulate: true)
            }
            return
        }
        let k = columns, n = outChannels
        let scratch = Storage(uninitializedCount: outputRowsPerChunk * outW * k)
        forEachChunk { rows in
            BLAS.sgemm(transposeA: false, transposeB: false, m: rows.count * outW, n: k, k: n,
                       a: gy + rows.lowerBound * outW * n, lda: n, b: weightColumns, ldb: k, beta: 0,
                       c: scratch.pointer, ldc: k)
            scatterColumns(scratch.pointer, rows: rows, into: gx)
        }
    }
}

/// Sizes of one convTranspose2x2 and its passes. Each input pixel (b, i, j) produces the 2×2 output
/// block y[b, 2i..2i+1, 2j..2j+1, :]; its row dy is 2·Cout contiguous floats (dx, co), which is why
/// the GEMM columns are ordered (dy, dx, co).
struct TransposedConvolutionGeometry {
    let batch: Int, height: Int, width: Int, inChannels: Int, outChannels: Int

    var inputPixels: Int { batch * height * width }
    /// Columns of the GEMM result: the 2×2 block of one input pixel.
    var blockSize: Int { 4 * outChannels }

    var pixelsPerChunk: Int {
        let budget = max(Tensor.convolutionScratchBytes / (4 * blockSize), minimumChunkPixels)
        return EvenChunks.size(count: inputPixels, budget: budget)
    }

    @inline(__always)
    func forEachChunk(_ body: (Range<Int>) -> Void) {
        EvenChunks.forEach(count: inputPixels, size: pixelsPerChunk, body)
    }

    /// PyTorch [Cin, Cout, 2, 2] → [Cin, 4·Cout] with columns (dy, dx, co).
    func weightAsBlocks(_ w: UnsafePointer<Float>) -> Tensor {
        let out = Tensor(uninitializedShape: [inChannels, blockSize])
        let po = out.data, cout = outChannels
        for ci in 0..<inChannels {
            let src = w + ci * blockSize, dst = po + ci * blockSize
            for co in 0..<cout {
                for t in 0..<4 { dst[t * cout + co] = src[co * 4 + t] }
            }
        }
        return out
    }

    /// gw[Cin, Cout, 2, 2] += the [Cin, 4·Cout] gradient permuted back to PyTorch order.
    func addBlocksGradient(_ g: UnsafePointer<Float>, into gw: UnsafeMutablePointer<Float>) {
        let cout = outChannels
        for ci in 0..<inChannels {
            let src = g + ci * blockSize, dst = gw + ci * blockSize
            for co in 0..<cout {
                for t in 0..<4 { dst[co * 4 + t] += src[t * cout + co] }
            }
        }
    }

    /// Offset in y of block row dy of input pixel `pixel`: y[b, 2i + dy, 2j, 0].
    @inline(__always)
    func outputOffset(pixel: Int, dy: Int) -> Int {
        let j = pixel % width, row = pixel / width // row = b·H + i
        return ((2 * row + dy) * 2 * width + 2 * j) * outChannels
    }

    /// y = blocks of x · W'' (+ bias), chunk by chunk through a [pixels, 4·Cout] scratch.
    func forward(x: UnsafePointer<Float>, weightBlocks: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>) {
        let n = blockSize, cout = outChannels, half = 2 * outChannels
        let scratch = Storage(uninitializedCount: pixelsPerChunk * n)
        forEachChunk { pixels in
            let blocks = scratch.pointer
            BLAS.sgemm(transposeA: false, transposeB: false, m: pixels.count, n: n, k: inChannels,
                       a: x + pixels.lowerBound * inChannels, lda: inChannels, b: weightBlocks, ldb: n,
                       beta: 0, c: blocks, ldc: n)
            Parallel.chunks(pixels.count, minimumChunk: max(1, 32768 / n)) { local in
                for p in local {
                    let pixel = pixels.lowerBound + p
                    for dy in 0..<2 {
                        let src = blocks + p * n + dy * half, dst = y + outputOffset(pixel: pixel, dy: dy)
                        if let bias {
                            for dx in 0..<2 {
                                let s = src + dx * cout, d = dst + dx * cout
                                for co in 0..<cout { d[co] = s[co] + bias[co] }
                            }
                        } else {
                            dst.update(from: src, count: half)
                        }
                    }
                }
            }
        }
    }

    /// G = the 2×2 blocks of gy gathered per input pixel; dx += G · W''ᵀ, dW'' += xᵀ · G.
    func backward(gy: UnsafePointer<Float>, x: Tensor, weight: Tensor, weightBlocks: UnsafePointer<Float>) {
        let gx = gradientBuffer(x)
        let blocksGradient = weight.needsGrad ? Tensor.zeros([inChannels, blockSize]) : nil
        guard gx != nil || blocksGradient != nil else { return }
        let n = blockSize, half = 2 * outChannels, cin = inChannels
        let scratch = Storage(uninitializedCount: pixelsPerChunk * n)
        forEachChunk { pixels in
            let blocks = scratch.pointer
            Parallel.chunks(pixels.count, minimumChunk: max(1, 32768 / n)) { local in
                for p in local {
                    let pixel = pixels.lowerBound + p
                    for dy in 0..<2 {
                        (blocks + p * n + dy * half).update(from: gy + outputOffset(pixel: pixel, dy: dy), count: half)
                    }
                }
            }
            if let gx {
                BLAS.sgemm(transposeA: false, transposeB: true, m: pixels.count, n: cin, k: n, a: blocks, lda: n,
                           b: weightBlocks, ldb: n, beta: 1, c: gx + pixels.lowerBound * cin, ldc: cin)
            }
            if let gw = blocksGradient {
                BLAS.sgemm(transposeA: true, transposeB: false, m: cin, n: n, k: pixels.count,
                           a: x.data + pixels.lowerBound * cin, lda: cin, b: blocks, ldb: n, beta: 1,
                           c: gw.data, ldc: n)
            }
        }
        if let g = blocksGradient {
            weight.accumulateGrad { gw in addBlocksGradient(g.data, into: gw) }
        }
    }
}

/// 0..<count cut into the fewest chunks of at most `budget` items, evened out so the last chunk is not a
/// sliver (both convolutions size their scratch matrices this way).
enum EvenChunks {
    static func size(count: Int, budget: Int) -> Int {
        let chunks = max(1, (count + budget - 1) / budget)
        return max(1, (count + chunks - 1) / chunks)
    }

    @inline(__always)
    static func forEach(count: Int, size: Int, _ body: (Range<Int>) -> Void) {
        var first = 0
        while first < count {
            body(first..<min(first + size, count))
            first += size
        }
    }
}
