// Pooling on channels-last feature maps [B, H, W, C]: max pooling (PyTorch MaxPool2d, floor mode, −∞
// padding) and adaptive average pooling (AdaptiveAvgPool2d's window rule). Every inner loop runs over
// the contiguous channel axis.
//
// Backwards scatter into the input gradient, and windows may overlap (stride < kernel, or adaptive
// windows of a non-dividing or larger output), so they split the work by bands of INPUT rows
// (`InputRowBands`): a thread only writes gx rows of its own band and skips contributions landing
// elsewhere — no two threads ever add into the same element, whatever B and C are.
//
// Legend: B batch, H×W input size, C channels, H'×W' output size, k kernel, s stride, p padding.

extension Tensor {
    /// Max pooling on x [B, H, W, C] (channels last), square kernel/stride/padding; padding counts as −∞
    /// (PyTorch MaxPool2d, ceil_mode False): Ho = (H + 2·padding − kernel) / stride + 1.
    /// Gradient goes to the (first, in row-major window order) maximum of each window, as PyTorch's CPU kernel.
    /// A NaN in a window wins (propagates), as in PyTorch.
    public func maxPool2d(kernel: Int, stride: Int, padding: Int = 0) -> Tensor {
        let x = self
        precondition(x.rank == 4, "maxPool2d: input must be channels-last [B, H, W, C], got \(x.shape)")
        let batch = x.shape[0], height = x.shape[1], width = x.shape[2], channels = x.shape[3]
        precondition(kernel >= 1 && stride >= 1, "maxPool2d: kernel \(kernel) and stride \(stride) must be ≥ 1")
        precondition(padding >= 0 && padding <= kernel / 2,
                     "maxPool2d: padding \(padding) must be in 0...kernel/2 = \(kernel / 2) (PyTorch's rule)")
        precondition(height + 2 * padding >= kernel && width + 2 * padding >= kernel,
                     "maxPool2d: kernel \(kernel) is larger than the padded input \(x.shape) (padding \(padding))")
        precondition(height * width <= 1 << 24,
                     "maxPool2d: image \(height)×\(width) has more than 2²⁴ pixels (argmax positions are tracked as exact floats)")
        let outH = (height + 2 * padding - kernel) / stride + 1
        let outW = (width + 2 * padding - kernel) / stride + 1
        let y = Tensor(uninitializedShape: [batch, outH, outW, channels])

        // The argmax (flat iy·W + ix within the image, as an exact float) of every output element, kept for
        // the backward only.
        let recording = Autograd.isEnabled && x.needsGrad
        let argmax = recording ? Storage(uninitializedCount: y.count) : nil
        let px = x.data, py = y.data, pa = argmax?.pointer
        let inImage = height * width * channels
        let rowWork = outW * kernel * kernel * channels

        Parallel.chunks(batch * outH, minimumChunk: max(1, 65536 / max(1, rowWork))) { outRows in
            for row in outRows {
                let b = row / outH, oy = row % outH
                let image = px + b * inImage
                let top = oy * stride - padding
                // Never empty: padding ≤ k/2 keeps at least one real row and column in every window.
                let rowRange = max(top, 0)..<min(top + kernel, height)
                for ox in 0..<outW {
                    let left = ox * stride - padding
                    let colRange = max(left, 0)..<min(left + kernel, width)
                    let o = (row * outW + ox) * channels
                    // Two inlined copies: without a graph the position tracking compiles away.
                    if let pa {
                        PoolLanes.maxWindow(image: image, width: width, channels: channels, rows: rowRange, cols: colRange,
                                            into: py + o, argmax: pa + o)
                    } else {
                        PoolLanes.maxWindow(image: image, width: width, channels: channels, rows: rowRange, cols: colRange,
                                            into: py + o, argmax: nil)
                    }
                }
            }
        }

        y.record("maxPool2d", [x]) { gy in
            x.accumulateGrad { gx in
                let pa = argmax!.pointer // kept whenever the op is recorded (same condition)
                let pg = gy.data
                let bandWork = max(1, outH * outW * channels / max(1, height))
                InputRowBands.forEach(batch: batch, rows: height, minimumRows: max(1, 65536 / bandWork)) { b, band in
                    let image = gx + b * inImage
                    // Argmax positions inside this band: lo ≤ i < lo + span (one unsigned compare).
                    let lo = band.lowerBound * width, span = UInt(band.count * width)
                    for oy in 0..<outH {
                        let top = oy * stride - padding
                        guard top < band.upperBound && top + kernel > band.lowerBound else { continue }
                        let base = (b * outH + oy) * outW * channels
                        for ox in 0..<outW {
                            let g = pg + base + ox * channels, at = pa + base + ox * channels
                            for c in 0..<channels {
                                let i = Int(at[c])
                                if UInt(bitPattern: i &- lo) < span { image[i &* channels &+ c] += g[c] }
                            }
                        }
                    }
                }
            }
        }
        return y
    }

    /// Adaptive average pooling of x [B, H, W, C] to [B, height, width, C] with PyTorch's window rule:
    /// output row i averages input rows [floor(i·H/height), ceil((i+1)·H/height)), the same for columns —
    /// also for outputs LARGER than the input (windows then overlap / repeat rows).
    /// The input size itself returns the input values unchanged (a view sharing storage).
    public func adaptiveAvgPool2d(height outH: Int, width outW: Int) -> Tensor {
        let x = self
        precondition(x.rank == 4, "adaptiveAvgPool2d: input must be channels-last [B, H, W, C], got \(x.shape)")
        let batch = x.shape[0], height = x.shape[1], width = x.shape[2], channels = x.shape[3]
        precondition(outH >= 1 && outW >= 1, "adaptiveAvgPool2d: output size \(outH)×\(outW) must be positive")
        precondition(height >= 1 && width >= 1, "adaptiveAvgPool2d: input \(x.shape) has an empty image")
        if outH == height && outW == width { return x.reshaped(x.shape) } // every window is one pixel

        let rows = AdaptiveWindows(inSize: height, outSize: outH), cols = AdaptiveWindows(inSize: width, outSize: outW)
        let y = Tensor(uninitializedShape: [batch, outH, outW, channels])
        let px = x.data, py = y.data
        let inImage = height * width * channels
        // Few output rows (global pooling, small batch) still use every thread: split the channels too.
        let outRows = batch * outH
        let slices = outRows >= Runtime.threads ? 1 : min((channels + 15) / 16, (Runtime.threads + outRows - 1) / outRows)
        let sliceWork = max(1, rows.maxSize * width * channels / slices)

        Parallel.chunks(outRows * slices, minimumChunk: max(1, 65536 / sliceWork)) { units in
            for unit in units {
                let row = unit / slices, slice = unit % slices
                let channelRange = PoolLanes.slice(slice, of: slices, channels: channels)
                let b = row / outH, oy = row % outH
                let image = px + b * inImage
                let r0 = rows.start[oy], r1 = rows.end[oy]
                for ox in 0..<outW {
                    let c0 = cols.start[ox], c1 = cols.end[ox]
                    let out = py + (row * outW + ox) * channels
                    let first = image + (r0 * width + c0) * channels
                    for c in channelRange { out[c] = first[c] }
                    for iy in r0..<r1 {
                        for ix in c0..<c1 where iy != r0 || ix != c0 {
                            let p = image + (iy * width + ix) * channels
                            for c in channelRange { out[c] += p[c] }
                        }
                    }
                    let area = Float((r1 - r0) * (c1 - c0))
                    for c in channelRange { out[c] /= area }
                }
            }
        }

        y.record("adaptiveAvgPool2d", [x]) { gy in
            x.accumulateGrad { gx in
                let pg = gy.data
                let bandWork = max(1, (outH * rows.maxSize / height + 1) * outW * cols.maxSize * channels)
                InputRowBands.forEach(batch: batch, rows: height, minimumRows: max(1, 65536 / bandWork)) { b, band in
                    let share = UnsafeMutablePointer<Float>.allocate(capacity: channels)
                    defer { share.deallocate() }
                    let image = gx + b * inImage
                    for oy in 0..<outH {
                        let r0 = max(rows.start[oy], band.lowerBound), r1 = min(rows.end[oy], band.upperBound)
                        guard r0 < r1 else { continue }
                        let windowRows = rows.end[oy] - rows.start[oy]
                        for ox in 0..<outW {
                            let c0 = cols.start[ox], c1 = cols.end[ox]
                            let area = Float(windowRows * (c1 - c0))
                            let g = pg + ((b * outH + oy) * outW + ox) * channels
                            for c in 0..<channels { share[c] = g[c] / area }
                            for iy in r0..<r1 {
                                for ix in c0..<c1 {
                                    let dst = image + (iy * width + ix) * channels
                                    for c in 0..<channels { dst[c] += share[c] }
                                }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}

/// AdaptiveAvgPool's windows along one axis: output i averages [start[i], end[i]) with
/// start = ⌊i·in/out⌋, end = ⌈(i+1)·in/out⌉ (integer arithmetic, as PyTorch).
final class AdaptiveWindows {
    let start: UnsafeMutablePointer<Int>, end: UnsafeMutablePointer<Int>
    /// The largest window.
    let maxSize: Int

    init(inSize: Int, outSize: Int) {
        start = .allocate(capacity: outSize); end = .allocate(capacity: outSize)
        var largest = 0
        for i in 0..<outSize {
            start[i] = i * inSize / outSize
            end[i] = ((i + 1) * inSize + outSize - 1) / outSize
            largest = max(largest, end[i] - start[i])
        }
        maxSize = largest
    }

    deinit { start.deallocate(); end.deallocate() }
}

/// Disjoint bands of input rows for scatter-style backwards: the B·H rows are cut into contiguous
/// chunks (one per thread), each chunk split at image borders, and `body(b, rows)` runs for every
/// image part. A body only writes gx rows of its band, so bands never collide.
enum InputRowBands {
    @inline(__always)
    static func forEach(batch: Int, rows: Int, minimumRows: Int, _ body: (_ image: Int, _ rows: Range<Int>) -> Void) {
        Parallel.chunks(batch * rows, minimumChunk: minimumRows) { range in
            var start = range.lowerBound
            while start < range.upperBound {
                let b = start / rows, end = min(range.upperBound, (b + 1) * rows)
                body(b, (start - b * rows)..<(end - b * rows))
                start = end
            }
        }
    }
}

/// 16-lane channel blocks for the pooling kernels.
enum PoolLanes {
    typealias Lanes = SIMD16<Float>
    static let width = 16

    /// Channels of slice s when C is cut into `slices` runs of whole 16-channel blocks.
    @inline(__always)
    static func slice(_ s: Int, of slices: Int, channels: Int) -> Range<Int> {
        if slices == 1 { return 0..<channels }
        let blocks = (channels + width - 1) / width
        return min(channels, width * (blocks * s / slices))..<min(channels, width * (blocks * (s + 1) / slices))
    }

    /// Max over the window rows × cols of one image for every channel (PyTorch's rule: a value replaces
    /// the running max if it is larger or NaN; the running max starts at −∞ with the window's first
    /// position, so an all −∞ window points at its first element). Writes the max to `out` and, if
    /// given, the flat position iy·W + ix of the winner to `argmax` (as a float, exact below 2²⁴).
    @inline(__always)
    static func maxWindow(image: UnsafePointer<Float>, width imageWidth: Int, channels: Int, rows: Range<Int>,
                          cols: Range<Int>, into out: UnsafeMutablePointer<Float>, argmax: UnsafeMutablePointer<Float>?) {
        let firstPosition = rows.lowerBound * imageWidth + cols.lowerBound
        var c = 0
        while c + width <= channels {
            // Positions ride along as floats (exact below 2²⁴): one compare mask then selects both the
            // value and the position, with no mask conversion between float and integer lanes.
            var best = Lanes(repeating: -.infinity)
            var at = Lanes(repeating: Float(firstPosition))
            for iy in rows {
                let rowStart = iy &* imageWidth
                for ix in cols {
                    let position = rowStart &+ ix
                    let v = UnsafeRawPointer(image + (position &* channels &+ c)).loadUnaligned(as: Lanes.self)
                    let take = (v .> best) .| (v .!= v)
                    best.replace(with: v, where: take)
                    at.replace(with: Lanes(repeating: Float(position)), where: take)
                }
            }
            UnsafeMutableRawPointer(out + c).storeBytes(of: best, as: Lanes.self)
            if let argmax { UnsafeMutableRawPointer(argmax + c).storeBytes(of: at, as: Lanes.self) }
            c += width
        }
        while c < channels {
            var best = -Float.infinity, at = firstPosition
            for iy in rows {
                for ix in cols {
                    let position = iy &* imageWidth &+ ix
                    let v = image[position &* channels &+ c]
                    if v > best || v.isNaN { best = v; at = position }
                }
            }
            out[c] = best
            argmax?[c] = Float(at)
            c += 1
        }
    }
}
