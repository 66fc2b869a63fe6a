// Softmax and log-softmax over the last axis (attention scores, class logits), max-subtracted so
// large inputs do not overflow. Both backwards need only the saved output:
//   softmax:     gx += y ⊙ (gy − Σ gy⊙y)
//   log-softmax: gx += gy − exp(y)·Σ gy
//
// Legend: x, y [..., C] seen as R rows × C (C = last axis).
import CKernels

extension Tensor {
    /// exp(x) / Σ exp(x) along the last axis.
    public func softmax() -> Tensor { lastAxisSoftmax(log: false) }

    /// x − log Σ exp(x) along the last axis.
    public func logSoftmax() -> Tensor { lastAxisSoftmax(log: true) }

    private func lastAxisSoftmax(log: Bool) -> Tensor {
        let name = log ? "log_softmax" : "softmax"
        precondition(rank >= 1, "\(name) needs an input of rank ≥ 1 (it runs over the last axis), got shape \(shape)")
        let x = self
        let cols = shape[rank - 1], rows = cols == 0 ? 0 : count / cols
        let minimumRows = Swift.max(1, Tensor.activationChunk / Swift.max(cols, 1))
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        Parallel.chunks(rows, minimumChunk: minimumRows) { r in
            let o = r.lowerBound * cols
            if log { ak_log_softmax_forward(px + o, py + o, r.count, cols) } else { ak_softmax_forward(px + o, py + o, r.count, cols) }
        }
        // Keep the output's storage, not y itself: y owns this closure, so capturing y would be a cycle.
        let output = y.storage
        y.record(name, [x]) { gy in
            x.accumulateGrad { gx in
                let py = output.pointer, pg = gy.data
                Parallel.chunks(rows, minimumChunk: minimumRows) { r in
                    let o = r.lowerBound * cols
                    if log {
                        ak_log_softmax_backward(py + o, pg + o, gx + o, r.count, cols)
                    } else {
                        ak_softmax_backward(py + o, pg + o, gx + o, r.count, cols)
                    }
                }
            }
        }
        return y
    }
}
