// Bilinear resize with PyTorch's align_corners=False semantics (F.interpolate(mode="bilinear"),
// no antialias), NCHW, for up- and down-sampling: output pixel d reads the input at
// src = (d + 0.5)·(in/out) − 0.5, clamped below at 0, between floor(src) and the next index (clamped
// to the last one). The taps and weights of every output row and column are computed once per call.
//
// Legend: B batch, C channels, H×W input size, H'×W' output size; a plane is one (b, c) image.
import CKernels

/// For each output position along one axis: the two input indices and their weights (public so fused
/// kernels elsewhere — resize-and-argmax — round exactly as this op does).
public final class BilinearAxis {
    public let outSize: Int
    public let low: UnsafeMutablePointer<Int>, high: UnsafeMutablePointer<Int>
    public let lowWeight: UnsafeMutablePointer<Float>, highWeight: UnsafeMutablePointer<Float>
    /// The taps again as 32-bit lane indices (ak_resize_row_permuted).
    let low32: UnsafeMutablePointer<Int32>, high32: UnsafeMutablePointer<Int32>

    public init(inSize: Int, outSize: Int) {
        self.outSize = outSize
        low = .allocate(capacity: outSize); high = .allocate(capacity: outSize)
        lowWeight = .allocate(capacity: outSize); highWeight = .allocate(capacity: outSize)
        low32 = .allocate(capacity: outSize); high32 = .allocate(capacity: outSize)
        // Float arithmetic, as PyTorch's CPU kernel does, so the weights match bit for bit.
        let scale = Float(inSize) / Float(outSize)
        for d in 0..<outSize {
            let src = max((Float(d) + 0.5) * scale - 0.5, 0)
            let i0 = min(Int(src), inSize - 1)
            let lambda = min(max(src - Float(i0), 0), 1)
            low[d] = i0
            high[d] = min(i0 + 1, inSize - 1)
            lowWeight[d] = 1 - lambda
            highWeight[d] = lambda
            low32[d] = Int32(truncatingIfNeeded: low[d]); high32[d] = Int32(truncatingIfNeeded: high[d])
        }
    }

    deinit {
        low.deallocate(); high.deallocate(); lowWeight.deallocate(); highWeight.deallocate()
        low32.deallocate(); high32.deallocate()
    }

    /// The taps as the C kernels take them (valid while this axis lives).
    var taps: ak_taps {
        ak_taps(lo: UnsafePointer(low), hi: UnsafePointer(high), wl: UnsafePointer(lowWeight),
                wh: UnsafePointer(highWeight), size: outSize)
    }
}

extension BilinearAxis {
    /// One output row along this (column) axis from the two source rows weighted (wt, wb). With
    /// `blendFirst` the rows are blended once into `scratch` (input-width floats) and then sampled with
    /// 2 taps per output — cheaper unless the row shrinks by 2× or more, where 4 direct taps win.
    @inline(__always)
    public func interpolateRow(top: UnsafePointer<Float>, bottom: UnsafePointer<Float>, topWeight wt: Float,
                               bottomWeight wb: Float, inputWidth inW: Int, blendFirst: Bool,
                               scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let cl = low, ch = high, cwl = lowWeight, cwh = highWeight
        if blendFirst && Self.permutes(inputWidth: inW) {
            ak_resize_row_permuted(top, bottom, inW, wt, wb, low32, high32, cwl, cwh, out, outSize, 0)
            return
        }
        if blendFirst {
            for i in 0..<inW { scratch[i] = wt * top[i] + wb * bottom[i] }
            for ox in 0..<outSize { out[ox] = cwl[ox] * scratch[cl[ox]] + cwh[ox] * scratch[ch[ox]] }
        } else {
            for ox in 0..<outSize {
                let l = cl[ox], h = ch[ox], wl = cwl[ox], wh = cwh[ox]
                out[ox] = wt * (wl * top[l] + wh * top[h]) + wb * (wl * bottom[l] + wh * bottom[h])
            }
        }
    }
}

extension BilinearAxis {
    /// The same row blend in AVX-512 (CKernels/resize.c, same bits) where the CPU has it.
    static let vectorKernel = PackedGEMM.enabled
    /// Whether blend-first rows of this source width are blended into two registers and sampled from there
    /// (ak_resize_row_permuted): up to 32 wide, a ViT's token grid (14 or 32).
    static func permutes(inputWidth: Int) -> Bool { vectorKernel && inputWidth <= 32 }

    /// For every input row iy of a plane [rows, inW]: g[iy, 0, ox] = plane[iy, low[ox]] and
    /// g[iy, 1, ox] = plane[iy, high[ox]] (into `g`, 2·rows·outSize floats).
    @inline(__always)
    func gatherTaps(plane: UnsafePointer<Float>, rows: Int, inputWidth inW: Int, into g: UnsafeMutablePointer<Float>) {
        let cl = low, ch = high
        for iy in 0..<rows {
            let src = plane + iy * inW, lo = g + 2 * iy * outSize, hi = lo + outSize
            for ox in 0..<outSize { lo[ox] = src[cl[ox]]; hi[ox] = src[ch[ox]] }
        }
    }

    /// One output row from gathered taps (`gatherTaps`) of source rows `top` and `bottom`: exactly
    /// interpolateRow's blend-first arithmetic, lwt·(wt·top[l] + wb·bottom[l]) + hwt·(wt·top[h] + wb·bottom[h]),
    /// but with every operand contiguous.
    @inline(__always)
    func interpolateGathered(_ g: UnsafePointer<Float>, top: Int, bottom: Int, topWeight wt: Float,
                             bottomWeight wb: Float, streaming: Bool = false, into out: UnsafeMutablePointer<Float>) {
        let tl = g + 2 * top * outSize, th = tl + outSize, bl = g + 2 * bottom * outSize, bh = bl + outSize
        let cwl = lowWeight, cwh = highWeight
        if Self.vectorKernel {
            ak_resize_row_gathered(tl, th, bl, bh, cwl, cwh, wt, wb, out, outSize, streaming ? 1 : 0)
            return
        }
        for ox in 0..<outSize {
            out[ox] = cwl[ox] * (wt * tl[ox] + wb * bl[ox]) + cwh[ox] * (wt * th[ox] + wb * bh[ox])
        }
    }
}

/// The transpose of a `BilinearAxis`, for the backward: for each input index i, the contiguous run of
/// output positions that read it (taps are monotone) with their weights, so the gradient is a gather
/// (a register sum) instead of a scatter whose consecutive adds hit the same address.
final class BilinearAxisTranspose {
    /// Output positions firstOutput[i] ..< firstOutput[i] + (pairStart[i+1] − pairStart[i]) read input i,
    /// with weights weight[pairStart[i] ...].
    let firstOutput: UnsafeMutablePointer<Int>, pairStart: UnsafeMutablePointer<Int>
    let weight: UnsafeMutablePointer<Float>

    init(_ axis: BilinearAxis, inSize: Int) {
        firstOutput = .allocate(capacity: inSize)
        pairStart = .allocate(capacity: inSize + 1)
        weight = .allocate(capacity: 2 * axis.outSize)
        var pairs = 0, d = 0
        for i in 0..<inSize {
            // Skip outputs entirely below i (both taps < i); they are monotone in d.
            while d < axis.outSize && axis.high[d] < i { d += 1 }
            firstOutput[i] = d
            pairStart[i] = pairs
            var e = d
            while e < axis.outSize && axis.low[e] <= i {
                weight[pairs] = (axis.low[e] == i ? axis.lowWeight[e] : 0) + (axis.high[e] == i ? axis.highWeight[e] : 0)
                pairs += 1
                e += 1
            }
        }
        pairStart[inSize] = pairs
    }

    deinit { firstOutput.deallocate(); pairStart.deallocate(); weight.deallocate() }
}

extension BilinearAxis {
    /// The transpose of `interpolateRow` (same `blendFirst`): adds the gradient `g` of one output row into
    /// the gradient rows `top` (weight wt) and `bottom` (wb). `scratch` holds `inW` floats.
    @inline(__always)
    func addTransposedRow(_ g: UnsafePointer<Float>, transpose colsT: BilinearAxisTranspose,
                          top: UnsafeMutablePointer<Float>, bottom: UnsafeMutablePointer<Float>,
                          topWeight wt: Float, bottomWeight wb: Float, inputWidth inW: Int, blendFirst: Bool,
                          scratch spread: UnsafeMutablePointer<Float>) {
        if blendFirst {
            // Gather the row back onto the input columns, then add it into the two source rows.
            let first = colsT.firstOutput, start = colsT.pairStart, tw = colsT.weight
            for i in 0..<inW {
                let gi = g + first[i], wi = tw + start[i]
                var sum: Float = 0
                for j in 0..<(start[i + 1] - start[i]) { sum += wi[j] * gi[j] }
                spread[i] = sum
            }
            for i in 0..<inW { top[i] += wt * spread[i] }
            for i in 0..<inW { bottom[i] += wb * spread[i] }
        } else {
            let cl = low, ch = high, cwl = lowWeight, cwh = highWeight
            for ox in 0..<outSize {
                let l = cl[ox], h = ch[ox], gt = wt * g[ox], gb = wb * g[ox]
                top[l] += cwl[ox] * gt; top[h] += cwh[ox] * gt
                bottom[l] += cwl[ox] * gb; bottom[h] += cwh[ox] * gb
            }
        }
    }
}

extension Tensor {
    /// [B, C, H, W] → [B, C, height, width], bilinear with align_corners=False. The same size returns
    /// the input values unchanged (a view sharing storage).
    public func resizedBilinear(height outH: Int, width outW: Int) -> Tensor {
        let x = self
        precondition(x.rank == 4, "resizedBilinear: input must be [B, C, H, W], got \(x.shape)")
        let planes = x.shape[0] * x.shape[1], inH = x.shape[2], inW = x.shape[3]
        precondition(outH >= 1 && outW >= 1, "resizedBilinear: output size \(outH)×\(outW) must be positive")
        precondition(inH >= 1 && inW >= 1, "resizedBilinear: input \(x.shape) has an empty image")
        if outH == inH && outW == inW { return x.reshaped(x.shape) }

        let rows = BilinearAxis(inSize: inH, outSize: outH), cols = BilinearAxis(inSize: inW, outSize: outW)
        let y = Tensor(uninitializedShape: [x.shape[0], x.shape[1], outH, outW])
        // Blending the two source rows first, then two taps per output, costs W + 2·W' per output row
        // instead of 4·W': worth it unless the width shrinks by 2 or more.
        let blendRowsFirst = inW < 2 * outW
        let inPlane = inH * inW, outPlane = outH * outW
        let minimumPlanes = max(1, 32768 / outPlane)
        let px = x.data, py = y.data
        // An output this large (a full-resolution logit map) leaves the caches before anyone reads it: written
        // with non-temporal stores it skips the read-for-ownership (241 MB: 6.8 → 4.6 ms on 2 Zen 4 cores).
        let streaming = y.count >= 16 << 20
        // Narrow source rows (a token grid) are blended and sampled in registers: no gathered taps.
        let permuted = blendRowsFirst && BilinearAxis.permutes(inputWidth: inW)

        Parallel.chunks(planes, minimumChunk: minimumPlanes) { range in
            // Gathered taps when blending rows first; the permuted and the direct 4-tap paths need no scratch.
            let gathered = UnsafeMutablePointer<Float>.allocate(capacity: blendRowsFirst && !permuted ? 2 * inH * outW : 1)
            defer {
                gathered.deallocate()
                if streaming { ak_store_fence() } // the streamed rows are visible once this chunk is done
            }
            for plane in range {
                let src = px + plane * inPlane
                if permuted {
                    for oy in 0..<outH {
                        ak_resize_row_permuted(src + rows.low[oy] * inW, src + rows.high[oy] * inW, inW,
                                               rows.lowWeight[oy], rows.highWeight[oy], cols.low32, cols.high32,
                                               cols.lowWeight, cols.highWeight, py + plane * outPlane + oy * outW,
                                               outW, streaming ? 1 : 0)
                    }
                    continue
                }
                if blendRowsFirst {
                    // Gather each input row's column taps once per plane; every output row is then contiguous
                    // vector arithmetic (the same operations as interpolateRow's, so the same bits).
                    cols.gatherTaps(plane: src, rows: inH, inputWidth: inW, into: gathered)
                    for oy in 0..<outH {
                        cols.interpolateGathered(gathered, top: rows.low[oy], bottom: rows.high[oy],
                                                 topWeight: rows.lowWeight[oy], bottomWeight: rows.highWeight[oy],
                                                 streaming: streaming, into: py + plane * outPlane + oy * outW)
                    }
                    continue
                }
                for oy in 0..<outH {
                    let top = src + rows.low[oy] * inW, bottom = src + rows.high[oy] * inW
                    let wt = rows.lowWeight[oy], wb = rows.highWeight[oy]
                    cols.interpolateRow(top: top, bottom: bottom, topWeight: wt, bottomWeight: wb, inputWidth: inW,
                                        blendFirst: false, scratch: gathered, into: py + plane * outPlane + oy * outW)
                }
            }
        }

        y.record("resizedBilinear", [x]) { gy in
            x.accumulateGrad { gx in
                let pg = gy.data
                let colsT = BilinearAxisTranspose(cols, inSize: inW)
                // Each thread owns whole planes, so the scatter-adds never collide.
                Parallel.chunks(planes, minimumChunk: minimumPlanes) { range in
                    let spread = UnsafeMutablePointer<Float>.allocate(capacity: inW)
                    defer { spread.deallocate() }
                    for plane in range {
                        let dst = gx + plane * inPlane
                        for oy in 0..<outH {
                            cols.addTransposedRow(pg + plane * outPlane + oy * outW, transpose: colsT,
                                                  top: dst + rows.low[oy] * inW, bottom: dst + rows.high[oy] * inW,
                                                  topWeight: rows.lowWeight[oy], bottomWeight: rows.highWeight[oy],
                                                  inputWidth: inW, blendFirst: blendRowsFirst, scratch: spread)
                        }
                    }
                }
            }
        }
        return y
    }
}

// Channels-last variant, x [B, H, W, C] → [B, H', W', C]: the same taps, weights and order of operations
// per value as the NCHW op (bit-identical results), but each output pixel blends four input pixel
// vectors of C contiguous floats, and the two source rows are blended as whole W·C-float rows.

extension Tensor {
    /// Bilinear resize (align_corners=False, no antialias, same rule as `resizedBilinear`, for up AND down
    /// sampling) of x [B, H, W, C] channels last → [B, height, width, C]. Same size returns a view.
    public func resizedBilinearChannelsLast(height outH: Int, width outW: Int) -> Tensor {
        let x = self
        precondition(x.rank == 4, "resizedBilinearChannelsLast: input must be [B, H, W, C], got \(x.shape)")
        let batch = x.shape[0], inH = x.shape[1], inW = x.shape[2], channels = x.shape[3]
        precondition(outH >= 1 && outW >= 1,
                     "resizedBilinearChannelsLast: output size \(outH)×\(outW) must be positive")
        precondition(inH >= 1 && inW >= 1, "resizedBilinearChannelsLast: input \(x.shape) has an empty image")
        if outH == inH && outW == inW { return x.reshaped(x.shape) }

        let rows = BilinearAxis(inSize: inH, outSize: outH)
        let line = ChannelsLastBilinearLine(inW: inW, outW: outW, channels: channels)
        let y = Tensor(uninitializedShape: [batch, outH, outW, channels])
        let inRow = inW * channels, outRow = outW * channels, inImage = inH * inRow
        let px = x.data, py = y.data

        Parallel.chunks(batch * outH, minimumChunk: max(1, 32768 / max(1, outRow))) { outRows in
            let blended = UnsafeMutablePointer<Float>.allocate(capacity: line.scratchCount)
            defer { blended.deallocate() }
            for row in outRows {
                let b = row / outH, oy = row % outH
                let image = px + b * inImage
                line.interpolate(top: image + rows.low[oy] * inRow, bottom: image + rows.high[oy] * inRow,
                                 topWeight: rows.lowWeight[oy], bottomWeight: rows.highWeight[oy],
                                 scratch: blended, into: py + row * outRow)
            }
        }

        y.record("resizedBilinearChannelsLast", [x]) { gy in
            x.accumulateGrad { gx in
                let pg = gy.data
                let colsT = BilinearAxisTranspose(line.cols, inSize: inW)
                // Input rows read by different output rows overlap, so each thread owns a band of input
                // rows and adds only into those (an output row straddling two bands is spread by both).
                let bandWork = max(1, outH * (inRow + 2 * outRow) / inH)
                InputRowBands.forEach(batch: batch, rows: inH, minimumRows: max(1, 65536 / bandWork)) { b, band in
                    let spread = UnsafeMutablePointer<Float>.allocate(capacity: line.scratchCount)
                    defer { spread.deallocate() }
                    let image = gx + b * inImage
                    for oy in 0..<outH {
                        let lowRow = rows.low[oy], highRow = rows.high[oy]
                        let topInBand = band.contains(lowRow), bottomInBand = band.contains(highRow)
                        guard topInBand || bottomInBand else { continue }
                        line.addTransposed(pg + (b * outH + oy) * outRow, transpose: colsT,
                                           top: topInBand ? image + lowRow * inRow : nil,
                                           bottom: bottomInBand ? image + highRow * inRow : nil,
                                           topWeight: rows.lowWeight[oy], bottomWeight: rows.highWeight[oy],
                                           scratch: spread)
                    }
                }
            }
        }
        return y
    }
}

/// The column axis of a channels-last resize: one output row (W'·C floats) from two input rows (W·C
/// floats) and the transpose. Same path choice (blend the rows first unless the width shrinks by 2 or
/// more) and the same expressions per value as `BilinearAxis.interpolateRow` and the NCHW backward.
///
/// Below 16 channels a per-pixel loop over C is too short to vectorise, so each pixel is one SIMD
/// operation of 4, 8 or 16 lanes (the smallest ≥ C) whose lanes beyond C spill into the following
/// pixels' slots, which the next (increasing) pixels overwrite. Only pixels whose lanes stay inside the
/// row take that path (the rest run the scalar loop), so nothing is read outside a buffer and no thread
/// writes into another's row. One channel is exactly the NCHW row operation.
final class ChannelsLastBilinearLine {
    let cols: BilinearAxis
    let inW: Int, outW: Int, channels: Int
    let blendRowsFirst: Bool
    /// SIMD width of the spill path: 4, 8 or 16 for 2...15 channels, 0 otherwise.
    let spillLanes: Int
    /// Output pixels 0..<spillPixels take the spill path in the forward.
    let spillPixels: Int
    /// Scratch rows hold W·C floats plus room for the last spill.
    var scratchCount: Int { inW * channels + 16 }

    init(inW: Int, outW: Int, channels: Int) {
        cols = BilinearAxis(inSize: inW, outSize: outW)
        self.inW = inW; self.outW = outW; self.channels = channels
        blendRowsFirst = inW < 2 * outW
        spillLanes = channels <= 1 || channels >= 16 ? 0 : channels <= 4 ? 4 : channels <= 8 ? 8 : 16
        let inRow = inW * channels, outRow = outW * channels
        var pixels = 0
        if spillLanes > 0 {
            // Store inside the output row; without blending, also load inside the input rows (taps are monotone).
            while pixels < outW && pixels * channels + spillLanes <= outRow
                    && (blendRowsFirst || cols.high[pixels] * channels + spillLanes <= inRow) { pixels += 1 }
        }
        spillPixels = pixels
    }

    /// out (W'·C) = column interpolation of wt·top + wb·bottom; `scratch` holds `scratchCount` floats.
    @inline(__always)
    func interpolate(top: UnsafePointer<Float>, bottom: UnsafePointer<Float>, topWeight wt: Float, bottomWeight wb: Float,
                     scratch: UnsafeMutablePointer<Float>, into out: UnsafeMutablePointer<Float>) {
        let channels = channels, inRow = inW * channels
        if channels == 1 {
            cols.interpolateRow(top: top, bottom: bottom, topWeight: wt, bottomWeight: wb, inputWidth: inW,
                                blendFirst: blendRowsFirst, scratch: scratch, into: out)
            return
        }
        if blendRowsFirst {
            for i in 0..<inRow { scratch[i] = wt * top[i] + wb * bottom[i] }
        }
        switch spillLanes {
        case 4: spillInterpolate(SIMD4<Float>.self, top, bottom, wt, wb, scratch, out)
        case 8: spillInterpolate(SIMD8<Float>.self, top, bottom, wt, wb, scratch, out)
        case 16: spillInterpolate(SIMD16<Float>.self, top, bottom, wt, wb, scratch, out)
        default: break
        }
        let cl = cols.low, ch = cols.high, cwl = cols.lowWeight, cwh = cols.highWeight
        for ox in spillPixels..<outW {
            let wl = cwl[ox], wh = cwh[ox], o = out + ox * channels
            let l = cl[ox] * channels, h = ch[ox] * channels
            if blendRowsFirst {
                let sl = scratch + l, sh = scratch + h
                for c in 0..<channels { o[c] = wl * sl[c] + wh * sh[c] }
            } else {
                let tl = top + l, th = top + h, bl = bottom + l, bh = bottom + h
                for c in 0..<channels { o[c] = wt * (wl * tl[c] + wh * th[c]) + wb * (wl * bl[c] + wh * bh[c]) }
            }
        }
    }

    /// Output pixels 0..<spillPixels, one V-wide operation each (same expressions as the scalar loop).
    @inline(__always)
    private func spillInterpolate<V: SIMD>(_: V.Type, _ top: UnsafePointer<Float>, _ bottom: UnsafePointer<Float>,
                                           _ wt: Float, _ wb: Float, _ scratch: UnsafePointer<Float>,
                                           _ out: UnsafeMutablePointer<Float>) where V.Scalar == Float {
        @inline(__always) func load(_ p: UnsafePointer<Float>) -> V { UnsafeRawPointer(p).loadUnaligned(as: V.self) }
        let channels = channels
        let cl = cols.low, ch = cols.high, cwl = cols.lowWeight, cwh = cols.highWeight
        let topWeight = V(repeating: wt), bottomWeight = V(repeating: wb)
        for ox in 0..<spillPixels {
            let wl = V(repeating: cwl[ox]), wh = V(repeating: cwh[ox])
            let l = cl[ox] * channels, h = ch[ox] * channels
            let value: V
            if blendRowsFirst {
                value = wl * load(scratch + l) + wh * load(scratch + h)
            } else {
                value = topWeight * (wl * load(top + l) + wh * load(top + h))
                    + bottomWeight * (wl * load(bottom + l) + wh * load(bottom + h))
            }
            UnsafeMutableRawPointer(out + ox * channels).storeBytes(of: value, as: V.self)
        }
    }

    /// The transpose of `interpolate` for one output-gradient row g (W'·C): adds into the gradient rows
    /// `top` (weight wt) and `bottom` (wb); a nil row belongs to another thread's band and is skipped.
    /// `scratch` holds `scratchCount` floats.
    @inline(__always)
    func addTransposed(_ g: UnsafePointer<Float>, transpose colsT: BilinearAxisTranspose,
                       top: UnsafeMutablePointer<Float>?, bottom: UnsafeMutablePointer<Float>?,
                       topWeight wt: Float, bottomWeight wb: Float, scratch spread: UnsafeMutablePointer<Float>) {
        let channels = channels, inRow = inW * channels
        if blendRowsFirst {
            // Gather the row back onto the input columns (sum over the outputs reading each column, in the
            // NCHW op's order), then add it into the source rows.
            let vectorColumns: Int
            switch spillLanes {
            case 4: vectorColumns = spillGather(SIMD4<Float>.self, g, colsT, spread)
            case 8: vectorColumns = spillGather(SIMD8<Float>.self, g, colsT, spread)
            case 16: vectorColumns = spillGather(SIMD16<Float>.self, g, colsT, spread)
            default: vectorColumns = 0
            }
            let first = colsT.firstOutput, start = colsT.pairStart, tw = colsT.weight
            for i in vectorColumns..<inW {
                let dst = spread + i * channels, n = start[i + 1] - start[i]
                let gi = g + first[i] * channels, wi = tw + start[i]
                if channels < 16 {
                    for c in 0..<channels {
                        var sum: Float = 0
                        for j in 0..<n { sum += wi[j] * gi[j * channels + c] }
                        dst[c] = sum
                    }
                } else {
                    dst.update(repeating: 0, count: channels)
                    for j in 0..<n {
                        let w = wi[j], gj = gi + j * channels
                        for c in 0..<channels { dst[c] += w * gj[c] }
                    }
                }
            }
            if let top { for k in 0..<inRow { top[k] += wt * spread[k] } }
            if let bottom { for k in 0..<inRow { bottom[k] += wb * spread[k] } }
            return
        }
        // Scatter, in the NCHW op's order per value: top low, top high, bottom low, bottom high.
        let cl = cols.low, ch = cols.high, cwl = cols.lowWeight, cwh = cols.highWeight
        for ox in 0..<outW {
            let wl = cwl[ox], wh = cwh[ox], go = g + ox * channels
            let l = cl[ox] * channels, h = ch[ox] * channels
            if let top {
                for c in 0..<channels { let gt = wt * go[c]; top[l + c] += wl * gt; top[h + c] += wh * gt }
            }
            if let bottom {
                for c in 0..<channels { let gb = wb * go[c]; bottom[l + c] += wl * gb; bottom[h + c] += wh * gb }
            }
        }
    }

    /// Gathered columns 0..<k, one V-wide sum each, for the leading columns whose reads stay inside the
    /// gradient row; returns k (the caller does the rest with the scalar loop).
    @inline(__always)
    private func spillGather<V: SIMD>(_: V.Type, _ g: UnsafePointer<Float>, _ colsT: BilinearAxisTranspose,
                                      _ spread: UnsafeMutablePointer<Float>) -> Int where V.Scalar == Float {
        let channels = channels, outRow = outW * channels, lanes = V.scalarCount
        let first = colsT.firstOutput, start = colsT.pairStart, tw = colsT.weight
        var i = 0
        while i < inW {
            let n = start[i + 1] - start[i]
            // The last output reading column i is first[i] + n − 1 (monotone in i).
            guard n == 0 || (first[i] + n - 1) * channels + lanes <= outRow else { break }
            let gi = g + first[i] * channels, wi = tw + start[i]
            var sum = V()
            for j in 0..<n { sum += V(repeating: wi[j]) * UnsafeRawPointer(gi + j * channels).loadUnaligned(as: V.self) }
            UnsafeMutableRawPointer(spread + i * channels).storeBytes(of: sum, as: V.self)
            i += 1
        }
        return i
    }
}
