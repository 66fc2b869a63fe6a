// The segmentation loss on low-resolution logits: crossEntropy(resizedBilinear(logits, H, W)) fused so the
// full-resolution logits [B, C, H, W] are never stored. With 150 classes at 512×512 and batch 8 those are
// 1.2 GB, their gradient as much again; here one output row [C, W] at a time is interpolated (the same taps,
// weights and order of operations as `resizedBilinear`, so every upsampled logit is bit-identical), scored,
// and in the backward recomputed, turned into its gradient and sent back through the transposed resize.
// Only the per-pixel log-sum-exp (B·H·W floats) is kept between forward and backward.
//
// Legend: B images, C classes, h×w logit grid, H×W label size.
import CKernels

extension Tensor {
    /// Mean over non-ignored pixels of −log softmax(upsample(self))[label], where upsample is the bilinear
    /// resize (align_corners=False) of logits [B, C, h, w] to [B, C, height, width]; labels: B·H·W, image-major.
    /// Same value, gradient and errors as `resizedBilinear(height:width:).crossEntropy(labels:ignoreIndex:)`.
    public func upsampledCrossEntropy(height outH: Int, width outW: Int, labels: [Int32], ignoreIndex: Int32 = 255) throws -> Tensor {
        let logits = self
        precondition(logits.rank == 4, "upsampledCrossEntropy: logits must be [B, C, h, w], got \(logits.shape)")
        precondition(outH >= 1 && outW >= 1, "upsampledCrossEntropy: output size \(outH)×\(outW) must be positive")
        let images = logits.shape[0], classes = logits.shape[1], inH = logits.shape[2], inW = logits.shape[3]
        let outPlane = outH * outW, inPlane = inH * inW
        guard labels.count == images * outPlane else {
            throw TensorError.shapeMismatch(
                "upsampledCrossEntropy: \(labels.count) labels for \(images) images of \(outH)×\(outW) (needs \(images * outPlane))")
        }
        let rows = BilinearAxis(inSize: inH, outSize: outH), cols = BilinearAxis(inSize: inW, outSize: outW)
        let blendRowsFirst = inW < 2 * outW // as resizedBilinear decides
        let lse = Storage(uninitializedCount: images * outPlane)

        /// Interpolates output row `oy` of image `b` for every class into `row` [C, W].
        func upsampleRow(_ b: Int, _ oy: Int, into row: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>) {
            let base = logits.data + b * classes * inPlane
            let top = rows.low[oy] * inW, bottom = rows.high[oy] * inW
            for c in 0..<classes {
                let plane = base + c * inPlane
                cols.interpolateRow(top: plane + top, bottom: plane + bottom, topWeight: rows.lowWeight[oy],
                                    bottomWeight: rows.highWeight[oy], inputWidth: inW, blendFirst: blendRowsFirst,
                                    scratch: scratch, into: row + c * outW)
            }
        }

        // Forward: images in parallel, one piece each.
        let partials = CrossEntropyPartials(pieces: images)
        labels.withUnsafeBufferPointer { labelBuffer in
            guard let labelBase = labelBuffer.baseAddress else { return }
            Parallel.forEach(images) { b in
                let row = UnsafeMutablePointer<Float>.allocate(capacity: classes * outW)
                let scratch = UnsafeMutablePointer<Float>.allocate(capacity: inW)
                defer { row.deallocate(); scratch.deallocate() }
                var loss = 0.0, valid = 0, bad = -1
                for oy in 0..<outH {
                    upsampleRow(b, oy, into: row, scratch: scratch)
                    let offset = b * outPlane + oy * outW
                    let found = ak_cross_entropy_forward(row, labelBase + offset, lse.pointer + offset, classes, outW, 0, outW,
                                                         ignoreIndex, &loss, &valid)
                    if found >= 0 && bad < 0 { bad = offset + found }
                }
                partials.set(b, loss: loss, valid: valid, firstBad: bad)
            }
        }
        let (mean, validPixels) = try partials.mean(labels: labels, classes: classes)
        let y = Tensor.scalar(mean)

        y.record("upsampled_cross_entropy", [logits]) { gy in
            logits.accumulateGrad { glogits in
                guard validPixels > 0 else { return } // the constant 0: no gradient
                let scale = gy.data[0] / Float(validPixels)
                let colsT = BilinearAxisTranspose(cols, inSize: inW)
                labels.withUnsafeBufferPointer { labelBuffer in
                    let labelBase = labelBuffer.baseAddress!
                    // Each thread owns whole images, so the adds into the low-resolution gradient never collide.
                    Parallel.forEach(images) { b in
                        let row = UnsafeMutablePointer<Float>.allocate(capacity: classes * outW)
                        let growRow = UnsafeMutablePointer<Float>.allocate(capacity: classes * outW)
                        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: inW)
                        defer { row.deallocate(); growRow.deallocate(); scratch.deallocate() }
                        for oy in 0..<outH {
                            upsampleRow(b, oy, into: row, scratch: scratch)
                            let offset = b * outPlane + oy * outW
                            growRow.update(repeating: 0, count: classes * outW)
                            ak_cross_entropy_backward(row, labelBase + offset, lse.pointer + offset, growRow, classes, outW, 0, outW,
                                                      ignoreIndex, scale)
                            for c in 0..<classes {
                                let dst = glogits + (b * classes + c) * inPlane
                                cols.addTransposedRow(growRow + c * outW, transpose: colsT,
                                                      top: dst + rows.low[oy] * inW, bottom: dst + rows.high[oy] * inW,
                                                      topWeight: rows.lowWeight[oy], bottomWeight: rows.highWeight[oy],
                                                      inputWidth: inW, blendFirst: blendRowsFirst, scratch: scratch)
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}
