// The segmentation loss on low-resolution logits: crossEntropy(resizedBilinear(logits, H, W)) fused so the
// full-resolution logits [B, C, H, W] are never stored. With 150 classes at 512×512 and batch 8 those are
// 1.2 GB, their gradient as much again; here each output pixel's class vector is interpolated (the same taps
// and weights as `resizedBilinear`) from a channels-last copy of the logits, scored, and in the backward
// recomputed, turned into its gradient and sent back through the same taps (CKernels/upsampled_loss.c).
// Only the per-pixel log-sum-exp (B·H·W floats) and the channels-last logits are kept for the backward.
//
// Legend: B images, C classes, h×w logit grid, H×W label size.
import CKernels

extension Tensor {
    /// Mean over non-ignored pixels of −log softmax(upsample(self))[label], where upsample is the bilinear
    /// resize (align_corners=False) of logits [B, C, h, w] to [B, C, height, width]; labels: B·H·W, image-major.
    /// Same errors as `resizedBilinear(height:width:).crossEntropy(labels:ignoreIndex:)`, and its value and
    /// gradient up to float rounding (the kernel fuses multiply-adds and sums the classes in 16 lanes).
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
        let lse = Storage(uninitializedCount: images * outPlane)
        // Channels-last copy of the logits, classes padded to whole 16-float vectors; kept for the backward
        // (B·h·w·cp floats: small next to the upsampled logits it replaces).
        let cp = (classes + 15) / 16 * 16, imageFloats = inPlane * cp
        let channelsLast = Storage(uninitializedCount: images * imageFloats)
        Parallel.forEach(images) { b in
            let src = logits.data + b * classes * inPlane, dst = channelsLast.pointer + b * imageFloats
            for p in 0..<inPlane {
                let out = dst + p * cp
                for c in 0..<classes { out[c] = src[c * inPlane + p] }
                for c in classes..<cp { out[c] = AK_PAD_LOGIT }
            }
        }
        func withTaps<T>(_ body: (UnsafePointer<ak_taps>, UnsafePointer<ak_taps>) -> T) -> T {
            var rowTaps = rows.taps, colTaps = cols.taps
            return body(&rowTaps, &colTaps)
        }

        // Forward: images in parallel, one piece each.
        let partials = CrossEntropyPartials(pieces: images)
        labels.withUnsafeBufferPointer { labelBuffer in
            guard let labelBase = labelBuffer.baseAddress else { return }
            withTaps { rowTaps, colTaps in
                Parallel.forEach(images) { b in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (inW + 1) * cp)
                    defer { scratch.deallocate() }
                    var loss = 0.0, valid = 0
                    let found = ak_upsampled_ce_forward(channelsLast.pointer + b * imageFloats, inW, classes, cp, rowTaps, colTaps,
                                                        labelBase + b * outPlane, ignoreIndex, lse.pointer + b * outPlane,
                                                        &loss, &valid, scratch)
                    partials.set(b, loss: loss, valid: valid, firstBad: found >= 0 ? b * outPlane + found : -1)
                }
            }
        }
        let (mean, validPixels) = try partials.mean(labels: labels, classes: classes)
        let y = Tensor.scalar(mean)

        y.record("upsampled_cross_entropy", [logits]) { gy in
            logits.accumulateGrad { glogits in
                guard validPixels > 0 else { return } // the constant 0: no gradient
                let scale = gy.data[0] / Float(validPixels)
                labels.withUnsafeBufferPointer { labelBuffer in
                    let labelBase = labelBuffer.baseAddress!
                    withTaps { rowTaps, colTaps in
                        // Each thread owns whole images, so the adds into the low-resolution gradient never collide.
                        Parallel.forEach(images) { b in
                            let gradient = UnsafeMutablePointer<Float>.allocate(capacity: imageFloats)
                            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: (2 * inW + 1) * cp)
                            defer { gradient.deallocate(); scratch.deallocate() }
                            gradient.update(repeating: 0, count: imageFloats)
                            ak_upsampled_ce_backward(channelsLast.pointer + b * imageFloats, inW, classes, cp, rowTaps, colTaps,
                                                     labelBase + b * outPlane, ignoreIndex, lse.pointer + b * outPlane, scale,
                                                     gradient, scratch)
                            let dst = glogits + b * classes * inPlane
                            for c in 0..<classes {
                                let plane = dst + c * inPlane
                                for p in 0..<inPlane { plane[p] += gradient[p * cp + c] }
                            }
                        }
                    }
                }
            }
        }
        return y
    }
}
