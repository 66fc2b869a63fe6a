// Depthwise k×k convolution, channels-last, stride 1, zero padding: PyTorch's Conv2d(groups = C)
// cross-correlation on tokens laid out as [B, H, W, C] (a ViT's [B, L, C] reshaped, no copy).
// The kernel is either shared [C, 1, k, k] (PyTorch layout) or per-sample [B, C, 1, k, k] (AdaRoute's
// routed kernels).
//
// Every loop runs innermost over the contiguous channel axis in 16-lane blocks with the accumulator in
// registers, and the kernel is transposed once per call to [k, k, C] so its taps are contiguous too.
//
// Legend: B batch, H×W input size, C channels, k kernel size, pad padding, H'×W' output size
// (H' = H + 2·pad − k + 1), t = ky·k + kx a kernel tap.

extension Tensor {
    /// y[b, oy, ox, c] = bias[c] + Σ_{ky,kx} w[c, ky, kx] · x[b, oy + ky − pad, ox + kx − pad, c].
    /// - x: [B, H, W, C]; weight: [C, 1, k, k] shared or [B, C, 1, k, k] per sample; bias: [C].
    /// - padding: zero padding on every side, default k/2 ("same" size, needs odd k).
    /// - Returns: [B, H', W', C].
    public func depthwiseConv2d(weight: Tensor, bias: Tensor?, padding: Int? = nil) -> Tensor {
        let x = self
        precondition(x.rank == 4, "depthwiseConv2d: input must be channels-last [B, H, W, C], got \(x.shape)")
        let batch = x.shape[0], height = x.shape[1], width = x.shape[2], channels = x.shape[3]
        let perSample = weight.rank == 5
        let k = weight.shape.last ?? 0
        if perSample {
            precondition(weight.shape == [batch, channels, 1, k, k],
                         "depthwiseConv2d: per-sample weight \(weight.shape) must be [B, C, 1, k, k] = [\(batch), \(channels), 1, k, k] for input \(x.shape)")
        } else {
            precondition(weight.rank == 4 && weight.shape == [channels, 1, k, k],
                         "depthwiseConv2d: weight \(weight.shape) must be [C, 1, k, k] (C = \(channels)) or [B, C, 1, k, k] for input \(x.shape)")
        }
        precondition(k >= 1, "depthwiseConv2d: empty kernel \(weight.shape)")
        precondition(padding != nil || k % 2 == 1,
                     "depthwiseConv2d: default padding k/2 needs an odd kernel size, got k = \(k); pass padding")
        let pad = padding ?? k / 2
        precondition(pad >= 0, "depthwiseConv2d: negative padding \(pad)")
        if let bias {
            precondition(bias.shape == [channels], "depthwiseConv2d: bias \(bias.shape) must be [C] = [\(channels)]")
        }
        let outH = height + 2 * pad - k + 1, outW = width + 2 * pad - k + 1
        precondition(outH >= 1 && outW >= 1,
                     "depthwiseConv2d: kernel \(k)×\(k) with padding \(pad) is larger than the padded input \(x.shape)")

        let geometry = DepthwiseGeometry(batch: batch, height: height, width: width, channels: channels,
                                         k: k, pad: pad, outH: outH, outW: outW, perSample: perSample)
        let kernels = geometry.tapsLast(weight.data) // [B or 1, k, k, C]
        let y = Tensor(uninitializedShape: [batch, outH, outW, channels])
        geometry.forward(x: x.data, taps: kernels.data, bias: bias?.data, y: y.data)

        y.record("depthwiseConv2d", [x, weight] + (bias.map { [$0] } ?? [])) { gy in
            x.accumulateGrad { gx in geometry.addInputGradient(gy: gy.data, taps: kernels.data, gx: gx) }
            weight.accumulateGrad { gw in geometry.addWeightGradient(gy: gy.data, x: x.data, gw: gw) }
            bias?.accumulateGrad { gb in
                Vector.addColumnSums(gy.data, rows: batch * outH * outW, cols: channels, into: gb)
            }
        }
        return y
    }
}

/// Sizes of one depthwise convolution and its kernels (forward, input and weight gradients).
struct DepthwiseGeometry {
    let batch: Int, height: Int, width: Int, channels: Int, k: Int, pad: Int, outH: Int, outW: Int
    let perSample: Bool

    static let lanes = 16
    typealias Lanes = SIMD16<Float>

    var tapCount: Int { k * k }
    /// Floats in one transposed kernel [k, k, C].
    var kernelSize: Int { k * k * channels }

    /// Taps t with 0 ≤ o + t − pad < size: the kernel rows (or columns) that reach inside the input
    /// from output position o. Empty when the padding alone covers the window.
    @inline(__always)
    func taps(output o: Int, inputSize size: Int) -> Range<Int> {
        let low = max(0, pad - o), high = min(k, size + pad - o)
        return low..<max(low, high)
    }

    /// Output positions o with 0 ≤ i + pad − o < k, i.e. the taps o that read input position i, as the
    /// tap range t = i + pad − o ∈ [low, high).
    @inline(__always)
    func tapsReading(input i: Int, outputSize size: Int) -> Range<Int> {
        let low = max(0, i + pad - size + 1), high = min(k, i + pad + 1)
        return low..<max(low, high)
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> Lanes {
        UnsafeRawPointer(p).loadUnaligned(as: Lanes.self)
    }
    @inline(__always) static func store(_ v: Lanes, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: Lanes.self)
    }

    /// PyTorch [.., C, 1, k, k] → [.., k, k, C], so that a tap's weights are contiguous over channels.
    func tapsLast(_ w: UnsafePointer<Float>) -> Tensor {
        let kernels = perSample ? batch : 1
        let out = Tensor(uninitializedShape: [kernels, k, k, channels])
        let po = out.data
        for n in 0..<kernels {
            let src = w + n * kernelSize, dst = po + n * kernelSize
            for c in 0..<channels {
                for t in 0..<tapCount { dst[t * channels + c] = src[c * tapCount + t] }
            }
        }
        return out
    }

    /// At least ~64K multiply-adds per parallel chunk of rows.
    func minimumRows(perRowWork: Int) -> Int { max(1, 65536 / max(1, perRowWork)) }

    /// y = bias + Σ taps; parallel over (b, output row).
    func forward(x: UnsafePointer<Float>, taps w: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                 y: UnsafeMutablePointer<Float>) {
        let channels = channels, lanes = Self.lanes
        let rowStride = width * channels
        Parallel.chunks(batch * outH, minimumChunk: minimumRows(perRowWork: outW * kernelSize)) { rows in
            for row in rows {
                let b = row / outH, oy = row % outH
                let image = x + b * height * rowStride
                let kernel = w + (perSample ? b * kernelSize : 0)
                let kyRange = taps(output: oy, inputSize: height)
                for ox in 0..<outW {
                    let kxRange = taps(output: ox, inputSize: width)
                    let out = y + (row * outW + ox) * channels
                    // Pointers at the first in-range tap: x[b, oy + ky₀ − pad, ox + kx₀ − pad, 0], w[ky₀, kx₀, 0].
                    let ky0 = kyRange.lowerBound, kx0 = kxRange.lowerBound, kyCount = kyRange.count, kxCount = kxRange.count
                    let firstX = image + ((oy + ky0 - pad) * width + (ox + kx0 - pad)) * channels
                    let firstW = kernel + (ky0 * k + kx0) * channels
                    var c = 0
                    while c + lanes <= channels {
                        var acc = bias.map { Self.load($0 + c) } ?? Lanes()
                        for ky in 0..<kyCount {
                            let xr = firstX + ky * rowStride + c, wr = firstW + ky * k * channels + c
                            for kx in 0..<kxCount { acc += Self.load(wr + kx * channels) * Self.load(xr + kx * channels) }
                        }
                        Self.store(acc, out + c)
                        c += lanes
                    }
                    while c < channels {
                        var acc = bias?[c] ?? 0
                        for ky in 0..<kyCount {
                            let xr = firstX + ky * rowStride + c, wr = firstW + ky * k * channels + c
                            for kx in 0..<kxCount { acc += wr[kx * channels] * xr[kx * channels] }
                        }
                        out[c] = acc
                        c += 1
                    }
                }
            }
        }
    }

    /// gx[b, iy, ix, c] += Σ w[ky, kx, c] · gy[b, iy + pad − ky, ix + pad − kx, c] (a gather, so each
    /// thread owns its input rows); parallel over (b, input row).
    func addInputGradient(gy: UnsafePointer<Float>, taps w: UnsafePointer<Float>, gx: UnsafeMutablePointer<Float>) {
        let channels = channels, lanes = Self.lanes
        let outRowStride = outW * channels
        Parallel.chunks(batch * height, minimumChunk: minimumRows(perRowWork: width * kernelSize)) { rows in
            for row in rows {
                let b = row / height, iy = row % height
                let grads = gy + b * outH * outRowStride
                let kernel = w + (perSample ? b * kernelSize : 0)
                let kyRange = tapsReading(input: iy, outputSize: outH)
                for ix in 0..<width {
                    let kxRange = tapsReading(input: ix, outputSize: outW)
                    let out = gx + (row * width + ix) * channels
                    // Pointers at the first tap that reads this pixel: gy[b, iy + pad − ky₀, ix + pad − kx₀, 0],
                    // w[ky₀, kx₀, 0]; later taps step back through gy and forward through w.
                    let ky0 = kyRange.lowerBound, kx0 = kxRange.lowerBound, kyCount = kyRange.count, kxCount = kxRange.count
                    let firstG = grads + ((iy + pad - ky0) * outW + (ix + pad - kx0)) * channels
                    let firstW = kernel + (ky0 * k + kx0) * channels
                    var c = 0
                    while c + lanes <= channels {
                        var acc = Self.load(out + c)
                        for ky in 0..<kyCount {
                            let gr = firstG - ky * outRowStride + c, wr = firstW + ky * k * channels + c
                            for kx in 0..<kxCount { acc += Self.load(wr + kx * channels) * Self.load(gr - kx * channels) }
                        }
                        Self.store(acc, out + c)
                        c += lanes
                    }
                    while c < channels {
                        var acc = out[c]
                        for ky in 0..<kyCount {
                            let gr = firstG - ky * outRowStride + c, wr = firstW + ky * k * channels + c
                            for kx in 0..<kxCount { acc += wr[kx * channels] * gr[-kx * channels] }
                        }
                        out[c] = acc
                        c += 1
                    }
                }
            }
        }
    }

    /// partial[ky, kx, c] += Σ_{rows, ox} gy[b, oy, ox, c] · x[b, oy + ky − pad, ox + kx − pad, c] over the
    /// given (b, output row) rows; the sum over ox stays in registers.
    func accumulateWeightGradient(rows: Range<Int>, gy: UnsafePointer<Float>, x: UnsafePointer<Float>,
                                  into partial: UnsafeMutablePointer<Float>) {
        let channels = channels, lanes = Self.lanes
        for row in rows {
            let b = row / outH, oy = row % outH
            let gRow = gy + row * outW * channels
            for ky in taps(output: oy, inputSize: height) {
                let xRow = x + (b * height + oy + ky - pad) * width * channels
                for kx in 0..<k {
                    // Output columns whose tap kx lands inside the input row.
                    let oxLow = max(0, pad - kx), oxHigh = min(outW, width + pad - kx)
                    guard oxLow < oxHigh else { continue }
                    let g = gRow + oxLow * channels, xs = xRow + (oxLow + kx - pad) * channels
                    let dst = partial + (ky * k + kx) * channels
                    var c = 0
                    while c + lanes <= channels {
                        var acc = Lanes()
                        for i in 0..<(oxHigh - oxLow) {
                            acc += Self.load(g + i * channels + c) * Self.load(xs + i * channels + c)
                        }
                        Self.store(Self.load(dst + c) + acc, dst + c)
                        c += lanes
                    }
                    while c < channels {
                        var acc: Float = 0
                        for i in 0..<(oxHigh - oxLow) { acc += g[i * channels + c] * xs[i * channels + c] }
                        dst[c] += acc
                        c += 1
                    }
                }
            }
        }
    }

    /// gw += dL/dw in PyTorch layout. Shared kernel: each thread sums its rows into its own [k, k, C]
    /// buffer, then the buffers are reduced. Per-sample kernels: one buffer per sample, parallel over B.
    func addWeightGradient(gy: UnsafePointer<Float>, x: UnsafePointer<Float>, gw: UnsafeMutablePointer<Float>) {
        let rowCount = batch * outH
        let pieces = perSample
            ? batch
            : min(Runtime.threads, max(1, rowCount / minimumRows(perRowWork: outW * kernelSize)))
        let partials = Tensor.zeros([pieces, k, k, channels])
        let pp = partials.data, size = kernelSize
        Parallel.forEach(pieces) { piece in
            let rows = perSample
                ? piece * outH..<(piece + 1) * outH
                : rowCount * piece / pieces..<rowCount * (piece + 1) / pieces
            accumulateWeightGradient(rows: rows, gy: gy, x: x, into: pp + piece * size)
        }
        if !perSample {
            for piece in 1..<max(pieces, 1) { Vector.add(pp + piece * size, into: pp, count: size) }
        }
        // [k, k, C] → [C, 1, k, k] per kernel.
        for n in 0..<(perSample ? batch : 1) {
            let src = pp + n * size, dst = gw + n * size
            for c in 0..<channels {
                for t in 0..<tapCount { dst[c * tapCount + t] += src[t * channels + c] }
            }
        }
    }
}
