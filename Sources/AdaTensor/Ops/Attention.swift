// Fused multi-head scaled-dot-product attention on timm's packed qkv layout.
//
// Legend: B batch, N tokens, D model width, H heads, hd = D/H head width.
// qkv [B, N, 3·D] is the output of the `attn.qkv` linear: columns 0..<D are q, D..<2D k, 2D..<3D v,
// and head h owns columns h·hd..<(h+1)·hd within each. Every GEMM reads q/k/v straight out of that
// strided buffer (leading dimension 3·D) and writes its head's block of the [B, N, D] output
// (leading dimension D), so no head is ever copied or transposed.
import CKernels

extension Tensor {
    /// softmax(q·kᵀ/√hd)·v per head, heads concatenated (head 0 first): qkv [B, N, 3·D] → [B, N, D].
    /// Same as timm's `Attention.forward` after the qkv linear and before the output projection.
    public func attention(heads: Int) -> Tensor {
        let qkv = self
        precondition(qkv.rank == 3 && qkv.shape[2] % 3 == 0,
                     "attention: qkv must be [B, N, 3·D], got \(qkv.shape)")
        let batch = qkv.shape[0], tokens = qkv.shape[1], width = qkv.shape[2] / 3
        precondition(heads >= 1 && width % heads == 0,
                     "attention: width D = \(width) (qkv \(qkv.shape)) is not divisible by \(heads) heads")
        let headWidth = width / heads
        let rowStride = 3 * width                  // leading dimension of q, k, v inside qkv
        let scale = Float(1 / Double(Swift.max(headWidth, 1)).squareRoot())
        let square = tokens * tokens               // one N × N probability matrix
        let y = Tensor(uninitializedShape: [batch, tokens, width])

        // The backward needs every pair's probabilities P. Small ones (≤ 32 MB per call) are kept; larger
        // ones — B·H·N² floats, 100 MB per block for ViT-Ti at 512² — are recomputed in the backward with the
        // same GEMM and softmax, bit for bit (measured at 512²: peak RSS 3.60 → 2.77 GiB for 10 % more step
        // time). Inference and recomputation use one N × N scratch per thread.
        let recordGraph = Autograd.isEnabled && qkv.needsGrad
        let pairs = batch * heads
        let keepProbabilities = recordGraph && pairs * square * MemoryLayout<Float>.size <= 32 << 20
        // With at least one (sample, head) pair per thread, the pairs run in parallel, each on one thread
        // (its GEMMs and softmax rows inline); otherwise the pairs run in turn and the GEMMs and softmax rows
        // use every thread. On 2 cores, with the spinning pool: ViT-Ti 512² training +16 %, 224² inference
        // ±noise to +8 % over splitting every pair's work.
        let threads = Runtime.threads // read once: per-thread scratch below is sized by it
        let pairParallel = pairs >= threads && threads > 1
        // Softmax rows per thread: enough work per chunk to pay for the dispatch.
        let minimumRows = Swift.max(1, 16384 / Swift.max(tokens, 1))

        /// Softmax forward or backward over all N rows of one pair: serial inside a parallel pair loop.
        func rows(_ body: (Int, Int) -> Void) {
            if pairParallel { body(0, tokens) } else {
                Parallel.chunks(tokens, minimumChunk: minimumRows) { r in body(r.lowerBound, r.count) }
            }
        }
        /// Runs `body(pairs range, thread slot)` over the (b, h) pairs, as decided above.
        func forPairs(_ body: (Range<Int>, Int) -> Void) {
            if pairParallel {
                // Inside a parallel piece, GEMMs and softmax rows run on that piece's thread.
                Parallel.indexedChunks(pairs, slots: threads) { slot, range in body(range, slot) }
            } else {
                body(0..<pairs, 0)
            }
        }

        // Inference: each pair in one fused pass over blocks of query rows (CKernels/attention.c), never
        // holding its N × N matrix.
        if !recordGraph && (pairParallel || threads == 1) && PackedGEMM.enabled && ak_attention_supports(headWidth) != 0 {
            let scratchSize = ak_attention_scratch_size(tokens, headWidth)
            let scratch = Storage(uninitializedCount: threads * scratchSize)
            forPairs { range, slot in
                for pair in range {
                    let b = pair / heads, h = pair % heads
                    let q = qkv.data + b * tokens * rowStride + h * headWidth
                    ak_attention_pair(q, q + width, q + 2 * width, rowStride, tokens, headWidth, scale,
                                      y.data + b * tokens * width + h * headWidth, width,
                                      scratch.pointer + slot * scratchSize)
                }
            }
            return y
        }

        let probabilities = Storage(uninitializedCount: (keepProbabilities ? pairs : threads) * square)

        /// P = softmax(scale · q·kᵀ) of pair (b, h) into p [N, N].
        func probabilitiesOf(_ b: Int, _ h: Int, into p: UnsafeMutablePointer<Float>) {
            let q = qkv.data + b * tokens * rowStride + h * headWidth, k = q + width
            BLAS.sgemm(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headWidth, alpha: scale,
                       a: q, lda: rowStride, b: k, ldb: rowStride, beta: 0, c: p, ldc: tokens)
            // Row by row, in place (the kernel reads x[j] before writing y[j]).
            rows { first, count in
                let start = p + first * tokens
                ak_softmax_forward(start, start, count, tokens)
            }
        }

        forPairs { range, slot in
            for pair in range {
                let b = pair / heads, h = pair % heads
                let v = qkv.data + b * tokens * rowStride + h * headWidth + 2 * width
                let p = probabilities.pointer + (keepProbabilities ? pair : slot) * square
                probabilitiesOf(b, h, into: p)
                // O_h = P·v  [N, hd] into columns h·hd..<(h+1)·hd of y.
                BLAS.sgemm(transposeA: false, transposeB: false, m: tokens, n: headWidth, k: tokens,
                           a: p, lda: tokens, b: v, ldb: rowStride,
                           beta: 0, c: y.data + b * tokens * width + h * headWidth, ldc: width)
            }
        }
        guard recordGraph else { return y }

        y.record("attention", [qkv]) { gy in
            qkv.accumulateGrad { gqkv in
                // Per-thread scratch, reused for every pair: P when recomputed, dP = dO·vᵀ and
                // dS = softmax-backward(P, dP). Pairs write disjoint columns of dq, dk, dv, so they never collide.
                let scratch = Storage(uninitializedCount: (pairParallel ? threads : 1) * 3 * square)
                forPairs { range, slot in
                    let recomputed = scratch.pointer + slot * 3 * square, dP = recomputed + square, dS = dP + square
                    for pair in range {
                        let b = pair / heads, h = pair % heads
                        let q = qkv.data + b * tokens * rowStride + h * headWidth, k = q + width, v = q + 2 * width
                        let gq = gqkv + b * tokens * rowStride + h * headWidth, gk = gq + width, gv = gq + 2 * width
                        let p = keepProbabilities ? probabilities.pointer + pair * square : recomputed
                        if !keepProbabilities { probabilitiesOf(b, h, into: p) }
                        let gO = gy.data + b * tokens * width + h * headWidth
                        // dv += Pᵀ·dO
                        BLAS.sgemm(transposeA: true, transposeB: false, m: tokens, n: headWidth, k: tokens,
                                   a: p, lda: tokens, b: gO, ldb: width, beta: 1, c: gv, ldc: rowStride)
                        // dP = dO·vᵀ
                        BLAS.sgemm(transposeA: false, transposeB: true, m: tokens, n: tokens, k: headWidth,
                                   a: gO, lda: width, b: v, ldb: rowStride, beta: 0, c: dP, ldc: tokens)
                        // dS = P ⊙ (dP − rowsum(dP ⊙ P)); the kernel accumulates, so zero each row block first.
                        rows { first, count in
                            let offset = first * tokens
                            (dS + offset).update(repeating: 0, count: count * tokens)
                            ak_softmax_backward(p + offset, dP + offset, dS + offset, count, tokens)
                        }
                        // dq += scale · dS·k ; dk += scale · dSᵀ·q
                        BLAS.sgemm(transposeA: false, transposeB: false, m: tokens, n: headWidth, k: tokens,
                                   alpha: scale, a: dS, lda: tokens, b: k, ldb: rowStride,
                                   beta: 1, c: gq, ldc: rowStride)
                        BLAS.sgemm(transposeA: true, transposeB: false, m: tokens, n: headWidth, k: tokens,
                                   alpha: scale, a: dS, lda: tokens, b: q, ldb: rowStride,
                                   beta: 1, c: gk, ldc: rowStride)
                    }
                }
            }
        }
        return y
    }
}
