// Patch embedding (timm's `patch_embed.proj`, a Conv2d with kernel = stride = p): cut the image into
// non-overlapping p×p patches, flatten each one, then one GEMM against the flattened conv weight.
//
// Legend: B batch, C image channels, H×W image size, p patch size, N = (H/p)·(W/p) patches,
// K = C·p·p values per patch, D embedding width.

extension Tensor {
    /// [B, C, H, W] → [B, N, C·p·p]: patches in row-major grid order, each flattened in (c, ky, kx)
    /// order — the order of a PyTorch Conv2d weight [D, C, p, p] — so a linear layer finishes the conv.
    public func patchified(patchSize p: Int) -> Tensor {
        let x = self
        precondition(x.rank == 4, "patchified: image must be [B, C, H, W], got \(x.shape)")
        let batch = x.shape[0], channels = x.shape[1], height = x.shape[2], width = x.shape[3]
        precondition(p >= 1 && height >= p && width >= p,
                     "patchified: image \(x.shape) is smaller than the patch size \(p)")
        let gridW = width / p, patchValues = channels * p * p
        let y = Tensor(uninitializedShape: [batch, (height / p) * gridW, patchValues])

        // One input row (b, c, h) is gridW runs of p contiguous values, each landing in its own patch at
        // column c·p·p + (h mod p)·p. Distinct input rows hit distinct outputs, so rows split freely over
        // threads, in both directions.
        @inline(__always)
        func forEachRun(_ rows: Range<Int>, _ body: (_ image: Int, _ patch: Int) -> Void) {
            for row in rows {
                let h = row % height, plane = row / height
                if h >= (height / p) * p { continue } // remainder rows dropped, as Conv2d(stride p) does
                let c = plane % channels, b = plane / channels
                let patchRowStart = (b * (height / p) + h / p) * gridW
                let column = c * p * p + (h % p) * p
                for gx in 0..<gridW {
                    body(row * width + gx * p, (patchRowStart + gx) * patchValues + column)
                }
            }
        }
        let rowCount = batch * channels * height, minimumRows = max(1, 32768 / max(width, 1))
        let px = x.data, py = y.data
        Parallel.chunks(rowCount, minimumChunk: minimumRows) { rows in
            forEachRun(rows) { image, patch in (py + patch).update(from: px + image, count: p) }
        }
        y.record("patchified", [x]) { gy in
            x.accumulateGrad { gx in
                let pg = gy.data
                Parallel.chunks(rowCount, minimumChunk: minimumRows) { rows in
                    forEachRun(rows) { image, patch in Vector.add(pg + patch, into: gx + image, count: p) }
                }
            }
        }
        return y
    }

    /// Conv2d with kernel = stride = p as patchify + linear: image [B, C, H, W], weight [D, C, p, p]
    /// (PyTorch layout), bias [D] → tokens [B, N, D].
    public func patchEmbedding(weight: Tensor, bias: Tensor?) -> Tensor {
        precondition(rank == 4, "patchEmbedding: image must be [B, C, H, W], got \(shape)")
        precondition(weight.rank == 4 && weight.shape[1] == shape[1] && weight.shape[2] == weight.shape[3],
                     "patchEmbedding: weight \(weight.shape) must be [D, C, p, p] with C = \(shape[1]) for image \(shape)")
        let p = weight.shape[2], embedding = weight.shape[0]
        return patchified(patchSize: p).linear(weight.reshaped([embedding, shape[1] * p * p]), bias: bias)
    }
}
