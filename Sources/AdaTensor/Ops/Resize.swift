// Bilinear resize with PyTorch's align_corners=False semantics (F.interpolate(mode="bilinear"),
// no antialias), NCHW, for up- and down-sampling: output pixel d reads the input at
// src = (d + 0.5)·(in/out) − 0.5, clamped below at 0, between floor(src) and the next index (clamped
// to the last one). The taps and weights of every output row and column are computed once per call.
//
// Legend: B batch, C channels, H×W input size, H'×W' output size; a plane is one (b, c) image.

/// For each output position along one axis: the two input indices and their weights (public so fused
/// kernels elsewhere — resize-and-argmax — round exactly as this op does).
public final class BilinearAxis {
    public let outSize: Int
    public let low: UnsafeMutablePointer<Int>, high: UnsafeMutablePointer<Int>
    public let lowWeight: UnsafeMutablePointer<Float>, highWeight: UnsafeMutablePointer<Float>

    public init(inSize: Int, outSize: Int) {
        self.outSize = outSize
        low = .allocate(capacity: outSize); high = .allocate(capacity: outSize)
        lowWeight = .allocate(capacity: outSize); highWeight = .allocate(capacity: outSize)
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
        }
    }

    deinit {
        low.deallocate(); high.deallocate(); lowWeight.deallocate(); highWeight.deallocate()
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

        Parallel.chunks(planes, minimumChunk: minimumPlanes) { range in
            let blended = UnsafeMutablePointer<Float>.allocate(capacity: inW)
            defer { blended.deallocate() }
            for plane in range {
                let src = px + plane * inPlane
                for oy in 0..<outH {
                    let top = src + rows.low[oy] * inW, bottom = src + rows.high[oy] * inW
                    let wt = rows.lowWeight[oy], wb = rows.highWeight[oy]
                    cols.interpolateRow(top: top, bottom: bottom, topWeight: wt, bottomWeight: wb, inputWidth: inW,
                                        blendFirst: blendRowsFirst, scratch: blended, into: py + plane * outPlane + oy * outW)
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
                    let cl = cols.low, ch = cols.high, cwl = cols.lowWeight, cwh = cols.highWeight
                    let first = colsT.firstOutput, start = colsT.pairStart, tw = colsT.weight
                    for plane in range {
                        let dst = gx + plane * inPlane
                        for oy in 0..<outH {
                            let top = dst + rows.low[oy] * inW, bottom = dst + rows.high[oy] * inW
                            let wt = rows.lowWeight[oy], wb = rows.highWeight[oy]
                            let g = pg + plane * outPlane + oy * outW
                            if blendRowsFirst {
                                // Transpose of the forward: gather the row back onto the input columns,
                                // then add it into the two source rows.
                                for i in 0..<inW {
                                    let gi = g + first[i], wi = tw + start[i]
                                    var sum: Float = 0
                                    for j in 0..<(start[i + 1] - start[i]) { sum += wi[j] * gi[j] }
                                    spread[i] = sum
                                }
                                for i in 0..<inW { top[i] += wt * spread[i] }
                                for i in 0..<inW { bottom[i] += wb * spread[i] }
                            } else {
                                for ox in 0..<outW {
                                    let l = cl[ox], h = ch[ox], gt = wt * g[ox], gb = wb * g[ox]
                                    top[l] += cwl[ox] * gt; top[h] += cwh[ox] * gt
                                    bottom[l] += cwl[ox] * gb; bottom[h] += cwh[ox] * gb
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
