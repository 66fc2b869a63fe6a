// Layer normalisation over the last axis, as PyTorch nn.LayerNorm (biased variance, two-pass so a
// large mean does not cancel the variance):
//   y = (x − mean)·rstd·weight + bias,   rstd = 1/√(var + eps)
// eps is the caller's: timm's ViT uses 1e-6, the AdaRoute adapter 1e-5.
//
// Legend: x, y [..., D] seen as R rows × D; weight, bias [D]; mean, rstd [R] (saved for the backward).
import CKernels

extension Tensor {
    public func layerNorm(weight: Tensor, bias: Tensor, eps: Float) -> Tensor {
        let x = self
        precondition(x.rank >= 1, "layerNorm needs an input of rank ≥ 1 (it normalises the last axis), got \(x.shape)")
        let cols = x.shape[x.rank - 1]
        precondition(cols > 0, "layerNorm: the last axis of input \(x.shape) is empty")
        precondition(weight.shape == [cols] && bias.shape == [cols],
                     "layerNorm: weight \(weight.shape) and bias \(bias.shape) must both be [\(cols)] for input \(x.shape)")
        precondition(eps >= 0 && eps.isFinite, "layerNorm: eps must be finite and ≥ 0, got \(eps)")
        let rows = x.count / cols
        let minimumRows = Swift.max(1, 16384 / cols)
        let y = Tensor(uninitializedShape: x.shape)
        let statistics = Storage(uninitializedCount: 2 * rows) // mean [R], then rstd [R]
        let px = x.data, py = y.data, pw = weight.data, pb = bias.data
        let mean = statistics.pointer, rstd = statistics.pointer + rows
        Parallel.chunks(rows, minimumChunk: minimumRows) { r in
            let start = r.lowerBound
            ak_layernorm_forward(px + start * cols, pw, pb, py + start * cols, mean + start, rstd + start,
                                 r.count, cols, eps)
        }

        y.record("layer_norm", [x, weight, bias]) { gy in
            let px = x.data, pw = weight.data, pg = gy.data
            let mean = statistics.pointer, rstd = statistics.pointer + rows
            let wantsWeight = weight.needsGrad, wantsBias = bias.needsGrad
            // gweight and gbias are sums over rows: threads would race on them, so each piece of rows
            // sums into its own zeroed partials [gweight D | gbias D], added up once at the end.
            let pieces = Swift.min(Runtime.threads, Swift.max(1, rows / minimumRows))
            let partials = Storage(zeroedCount: wantsWeight || wantsBias ? pieces * 2 * cols : 0)
            func run(_ gx: UnsafeMutablePointer<Float>?) {
                Parallel.forEach(pieces) { piece in
                    let start = rows * piece / pieces, end = rows * (piece + 1) / pieces
                    guard start < end else { return }
                    let partial = partials.pointer + piece * 2 * cols
                    ak_layernorm_backward(px + start * cols, pw, mean + start, rstd + start, pg + start * cols,
                                          gx.map { $0 + start * cols }, wantsWeight ? partial : nil,
                                          wantsBias ? partial + cols : nil, end - start, cols)
                }
            }
            if x.needsGrad { x.accumulateGrad { gx in run(gx) } } else { run(nil) }
            weight.accumulateGrad { gw in
                for piece in 0..<pieces { Vector.add(partials.pointer + piece * 2 * cols, into: gw, count: cols) }
            }
            bias.accumulateGrad { gb in
                for piece in 0..<pieces { Vector.add(partials.pointer + piece * 2 * cols + cols, into: gb, count: cols) }
            }
        }
        return y
    }
}
