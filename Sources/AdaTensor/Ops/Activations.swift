// Pointwise activations: GELU (the exact erf form of PyTorch's nn.GELU(), or its tanh approximation)
// and ReLU. The GELU loops are C kernels (vectorised erf/tanh); the threads split the elements.
//
// Legend: N elements, any shape; the output has the input's shape.
import CKernels

/// Which GELU formula to use; the raw values are PyTorch's `approximate=` strings.
public enum GELUApproximation: String, CaseIterable, Sendable {
    /// x·Φ(x) with the exact normal CDF Φ(x) = ½(1 + erf(x/√2)) — nn.GELU(), timm's ViT MLP.
    case none
    /// ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) — nn.GELU(approximate="tanh").
    case tanh
}

extension Tensor {
    /// Elements per thread chunk for the transcendental kernels (below this, threading costs more).
    static var activationChunk: Int { 16384 }

    /// GELU of every element; the backward recomputes Φ(x) and φ(x) from the saved input.
    public func gelu(approximation: GELUApproximation = .none) -> Tensor {
        let x = self
        let exact = approximation == .none
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        Parallel.chunks(count, minimumChunk: Tensor.activationChunk) { r in
            let o = r.lowerBound
            if exact { ak_gelu_erf_forward(px + o, py + o, r.count) } else { ak_gelu_tanh_forward(px + o, py + o, r.count) }
        }
        y.record(exact ? "gelu" : "gelu_tanh", [x]) { gy in
            x.accumulateGrad { gx in
                let px = x.data, pg = gy.data
                Parallel.chunks(x.count, minimumChunk: Tensor.activationChunk) { r in
                    let o = r.lowerBound
                    if exact {
                        ak_gelu_erf_backward(px + o, pg + o, gx + o, r.count)
                    } else {
                        ak_gelu_tanh_backward(px + o, pg + o, gx + o, r.count)
                    }
                }
            }
        }
        return y
    }

    /// max(x, 0) elementwise (NaN propagates); the gradient at exactly 0 is 0, as in PyTorch.
    public func relu() -> Tensor {
        let x = self
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        Parallel.chunks(count, minimumChunk: 32768) { r in
            for i in r { let v = px[i]; py[i] = v < 0 ? 0 : v }
        }
        // The backward reads the input (not y): capturing y in its own closure would form a cycle.
        y.record("relu", [x]) { gy in
            x.accumulateGrad { gx in
                let px = x.data, pg = gy.data
                Parallel.chunks(x.count, minimumChunk: 32768) { r in
                    for i in r { gx[i] += px[i] > 0 ? pg[i] : 0 }
                }
            }
        }
        return y
    }
}
