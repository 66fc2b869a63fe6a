// Resampling a learned position embedding to another token grid, as timm's resample_abs_pos_embed:
// the CLS row is kept, the grid rows are treated as a D-channel image and resized with PyTorch's
// antialiased bicubic interpolation (F.interpolate(mode="bicubic", antialias=True, align_corners=False)).
import AdaTensor

public enum PositionEmbedding {
    /// pos [1, prefix + oh·ow, D] → [1, prefix + nh·nw, D]; `prefix` leading rows (CLS) are copied.
    public static func resample(_ pos: Tensor, from old: (Int, Int), to new: (Int, Int), prefix: Int = 1) -> Tensor {
        let d = pos.shape[2]
        precondition(pos.shape[1] == prefix + old.0 * old.1, "pos_embed \(pos.shape) does not hold a \(old.0)×\(old.1) grid")
        let out = Tensor(uninitializedShape: [1, prefix + new.0 * new.1, d])
        out.data.update(from: pos.data, count: prefix * d)
        let rows = AntialiasedBicubic.weights(input: old.0, output: new.0)
        let cols = AntialiasedBicubic.weights(input: old.1, output: new.1)
        // Separable: first along columns, then along rows; channels (D) are contiguous.
        var tmp = [Float](repeating: 0, count: old.0 * new.1 * d)
        let src = pos.data + prefix * d
        for y in 0..<old.0 {
            for x in 0..<new.1 {
                let (start, ws) = cols[x]
                for (j, wgt) in ws.enumerated() {
                    let s = src + (y * old.1 + start + j) * d
                    for c in 0..<d { tmp[(y * new.1 + x) * d + c] += wgt * s[c] }
                }
            }
        }
        let dst = out.data + prefix * d
        dst.update(repeating: 0, count: new.0 * new.1 * d)
        for y in 0..<new.0 {
            let (start, ws) = rows[y]
            for (j, wgt) in ws.enumerated() {
                for x in 0..<new.1 {
                    for c in 0..<d { dst[(y * new.1 + x) * d + c] += wgt * tmp[((start + j) * new.1 + x) * d + c] }
                }
            }
        }
        return out
    }
}

/// PyTorch's separable antialiased interpolation weights (aten/src/ATen/native/cpu/UpSampleKernel.cpp,
/// `_compute_indices_weights_aa`) with the bicubic filter of a = −0.5 (as PIL).
enum AntialiasedBicubic {
    static func filter(_ x: Double) -> Double {
        let a = -0.5, t = Swift.abs(x)
        if t < 1 { return ((a + 2) * t - (a + 3)) * t * t + 1 }
        if t < 2 { return (((t - 5) * t + 8) * t - 4) * a }
        return 0
    }

    /// For every output index: first input index and normalised weights.
    static func weights(input: Int, output: Int) -> [(Int, [Float])] {
        let scale = Double(input) / Double(output)
        let support = (scale >= 1 ? scale : 1) * 2
        let invScale = scale >= 1 ? 1 / scale : 1
        return (0..<output).map { i in
            let center = scale * (Double(i) + 0.5)
            let lo = max(Int(center - support + 0.5), 0)
            let hi = min(Int(center + support + 0.5), input)
            var ws = (lo..<hi).map { filter((Double($0) - center + 0.5) * invScale) }
            let total = ws.reduce(0, +)
            if total != 0 { ws = ws.map { $0 / total } }
            return (lo, ws.map(Float.init))
        }
    }
}
