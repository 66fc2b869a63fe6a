// Pixel-wise softmax cross-entropy with an ignore index (semantic segmentation loss).
//
// Legend: B images, C classes, P pixels per image (the product of the spatial axes, H·W; 1 for
// [B, C] classification logits). Logits are NCHW [B, C, ...spatial], so within one image each
// class is a contiguous plane of P values and the C kernels run along pixels.
import CKernels

extension Tensor {
    /// Mean over non-ignored pixels of −log softmax(logits)[label] → shape [].
    /// - self: logits [B, C, ...spatial] (or [B, C]); labels: B·P class indices, image-major.
    /// - Pixels labelled `ignoreIndex` count neither in the sum nor in the mean's denominator; when
    ///   every pixel is ignored the loss is 0 and the gradient is zero.
    /// - Throws `TensorError.shapeMismatch` for a wrong label count and
    ///   `TensorError.labelOutOfRange` for a label outside 0..<C that is not `ignoreIndex`.
    public func crossEntropy(labels: [Int32], ignoreIndex: Int32 = 255) throws -> Tensor {
        let logits = self
        precondition(logits.rank >= 2, "crossEntropy: logits must be [B, C, ...spatial], got \(logits.shape)")
        let images = logits.shape[0], classes = logits.shape[1]
        let plane = logits.shape.dropFirst(2).reduce(1, *)
        let pixels = images * plane
        guard labels.count == pixels else {
            throw TensorError.shapeMismatch(
                "crossEntropy: \(labels.count) labels for logits \(logits.shape) (needs B·spatial = \(pixels))")
        }
        precondition(classes >= 1 || pixels == 0, "crossEntropy: logits \(logits.shape) have no classes")

        // Split the flat pixel range (image-major) into one piece per thread; a piece may cross image
        // boundaries and is cut there into per-image kernel calls. Each pixel costs ~C exps.
        let minimumPixels = Swift.max(64, 16384 / Swift.max(classes, 1))
        let pieces = Swift.min(Runtime.threads, Swift.max(1, pixels / minimumPixels))
        // Calls body(image, p0, p1) for the part of piece `piece` inside each image it touches.
        @inline(__always)
        func forEachImageSpan(of piece: Int, _ body: (Int, Int, Int) -> Void) {
            let start = pixels * piece / pieces, end = pixels * (piece + 1) / pieces
            guard start < end else { return }
            for image in (start / plane)...((end - 1) / plane) {
                let base = image * plane
                body(image, Swift.max(start - base, 0), Swift.min(end - base, plane))
            }
        }

        let lse = Storage(uninitializedCount: pixels)   // per-pixel log-sum-exp, saved for the backward
        let partials = CrossEntropyPartials(pieces: pieces)

        labels.withUnsafeBufferPointer { labelBuffer in
            guard let labelBase = labelBuffer.baseAddress else { return }
            Parallel.forEach(pieces) { piece in
                var loss = 0.0, valid = 0, bad = -1
                forEachImageSpan(of: piece) { image, p0, p1 in
                    let found = ak_cross_entropy_forward(
                        logits.data + image * classes * plane, labelBase + image * plane,
                        lse.pointer + image * plane, classes, plane, p0, p1, ignoreIndex, &loss, &valid)
                    if found >= 0 && bad < 0 { bad = image * plane + found }
                }
                partials.set(piece, loss: loss, valid: valid, firstBad: bad)
            }
        }
        let (mean, validPixels) = try partials.mean(labels: labels, classes: classes)
        let y = Tensor.scalar(mean)

        y.record("cross_entropy", [logits]) { gy in
            logits.accumulateGrad { glogits in
                // No valid pixel: the loss is the constant 0, so the gradient stays zero.
                guard validPixels > 0 else { return }
                let scale = gy.data[0] / Float(validPixels)
                labels.withUnsafeBufferPointer { labelBuffer in
                    let labelBase = labelBuffer.baseAddress!
                    // Pieces own disjoint pixels, hence disjoint gradient elements.
                    Parallel.forEach(pieces) { piece in
                        forEachImageSpan(of: piece) { image, p0, p1 in
                            let offset = image * classes * plane
                            ak_cross_entropy_backward(
                                logits.data + offset, labelBase + image * plane, lse.pointer + image * plane,
                                glogits + offset, classes, plane, p0, p1, ignoreIndex, scale)
                        }
                    }
                }
            }
        }
        return y
    }
}

/// Per-piece results of a parallel cross-entropy forward (pieces own disjoint pixel ranges, in pixel order),
/// combined in piece order so the total does not depend on thread timing.
final class CrossEntropyPartials {
    let pieces: Int
    private let lossSums: UnsafeMutablePointer<Double>, validCounts: UnsafeMutablePointer<Int>
    private let firstBad: UnsafeMutablePointer<Int>

    init(pieces: Int) {
        self.pieces = pieces
        lossSums = .allocate(capacity: pieces)
        validCounts = .allocate(capacity: pieces)
        firstBad = .allocate(capacity: pieces)
    }

    deinit { lossSums.deallocate(); validCounts.deallocate(); firstBad.deallocate() }

    /// Piece `piece`'s loss sum, scored-pixel count and first bad-label pixel (−1: none). Each piece is set by
    /// one thread.
    func set(_ piece: Int, loss: Double, valid: Int, firstBad bad: Int) {
        lossSums[piece] = loss
        validCounts[piece] = valid
        firstBad[piece] = bad
    }

    /// The mean loss over scored pixels (0 when none) and their count; throws for the first out-of-range
    /// label in pixel order.
    func mean(labels: [Int32], classes: Int) throws -> (mean: Float, valid: Int) {
        var totalLoss = 0.0, totalValid = 0
        for piece in 0..<pieces {
            let bad = firstBad[piece]
            if bad >= 0 { throw TensorError.labelOutOfRange(value: labels[bad], classes: classes, pixel: bad) }
            totalLoss += lossSums[piece]
            totalValid += validCounts[piece]
        }
        return (totalValid > 0 ? Float(totalLoss / Double(totalValid)) : 0, totalValid)
    }
}
