// Test-time inference on a SegmentationModel, mmseg's protocol (seg-heads-and-metrics.md §4): the image
// arrives already test-resized and normalised; the model runs once (`whole`) or on overlapping windows
// (`slide`, logits averaged where windows overlap); optionally on the mirror image too (flip TTA); the
// logits are then resized bilinearly (align_corners=False) to the ORIGINAL image size and argmaxed there,
// because metrics are computed against the original-resolution annotation.
//
// Legend: K classes, H×W the resized (model input) image, H0×W0 the original image, window = one crop box.
// Logit maps are [K, H, W] planes (batch 1).
import AdaData
import AdaModels
import AdaNN
import AdaTensor

/// One slide window, half-open: rows y1..<y2, columns x1..<x2.
public struct WindowBox: Equatable, Sendable, CustomStringConvertible {
    public var y1: Int, y2: Int, x1: Int, x2: Int
    public init(y1: Int, y2: Int, x1: Int, x2: Int) {
        self.y1 = y1; self.y2 = y2; self.x1 = x1; self.x2 = x2
    }
    public var height: Int { y2 - y1 }
    public var width: Int { x2 - x1 }
    public var description: String { "[\(y1)..<\(y2), \(x1)..<\(x2)]" }
}

/// mmseg's `slide_inference` grid: crop and stride as (height, width).
public struct SlideWindows: Equatable, Sendable, Codable {
    public var cropHeight: Int, cropWidth: Int
    public var strideHeight: Int, strideWidth: Int

    public init(crop: (height: Int, width: Int), stride: (height: Int, width: Int)) {
        precondition(crop.height > 0 && crop.width > 0, "slide inference: crop \(crop.height)×\(crop.width) must be positive")
        precondition(stride.height > 0 && stride.width > 0, "slide inference: stride \(stride.height)×\(stride.width) must be positive")
        // A stride beyond the crop leaves pixels no window covers (mmseg asserts on the zero count).
        precondition(stride.height <= crop.height && stride.width <= crop.width,
                     "slide inference: stride \(stride.height)×\(stride.width) exceeds crop \(crop.height)×\(crop.width), leaving gaps")
        cropHeight = crop.height; cropWidth = crop.width
        strideHeight = stride.height; strideWidth = stride.width
    }

    /// Windows along one axis: max(size − crop + stride − 1, 0) / stride + 1.
    public static func gridCount(size: Int, crop: Int, stride: Int) -> Int {
        max(size - crop + stride - 1, 0) / stride + 1
    }

    /// Every window over an H×W image, row-major over the grid, clamped to the image exactly as mmseg:
    /// y2 = min(y1 + crop, H), then y1 = max(y2 − crop, 0) (so the last window is shifted back inside and
    /// an image smaller than the crop is one window of the image's size).
    public func boxes(height: Int, width: Int) -> [WindowBox] {
        precondition(height > 0 && width > 0, "slide inference: image \(height)×\(width) is empty")
        let rows = Self.gridCount(size: height, crop: cropHeight, stride: strideHeight)
        let cols = Self.gridCount(size: width, crop: cropWidth, stride: strideWidth)
        var boxes: [WindowBox] = []
        boxes.reserveCapacity(rows * cols)
        for i in 0..<rows {
            for j in 0..<cols {
                let y2 = min(i * strideHeight + cropHeight, height), x2 = min(j * strideWidth + cropWidth, width)
                boxes.append(WindowBox(y1: max(y2 - cropHeight, 0), y2: y2, x1: max(x2 - cropWidth, 0), x2: x2))
            }
        }
        return boxes
    }
}

public enum InferenceMode: Equatable, Sendable {
    /// One forward pass on the whole (resized) image.
    case whole
    /// Overlapping windows, logits averaged (mmseg `mode='slide'`).
    case slide(SlideWindows)
}

/// How flip TTA combines the two views.
public enum FlipAverage: String, Equatable, Sendable, Codable {
    /// Mean of the logits (then resize and argmax).
    case logits
    /// Mean of the softmax probabilities at the original size (mmseg's SegTTAModel).
    case probabilities
}

public struct InferenceOptions: Equatable, Sendable {
    public var mode: InferenceMode
    /// Also run the mirror image and average (mirrored back).
    public var flip: Bool
    public var flipAverage: FlipAverage
    /// Dataset (task) id handed to the model's ForwardContext, for task-routed models.
    public var taskId: Int?

    public init(mode: InferenceMode = .whole, flip: Bool = false, flipAverage: FlipAverage = .logits, taskId: Int? = nil) {
        self.mode = mode
        self.flip = flip
        self.flipAverage = flipAverage
        self.taskId = taskId
    }
}

/// A predicted label map at the original image size.
public struct SegmentationPrediction: Sendable {
    public var width: Int
    public var height: Int
    /// Class per pixel, row-major H0 × W0.
    public var labels: [Int32]
    /// Softmax over classes, [K, H0, W0], when asked for.
    public var probabilities: Tensor?

    /// The labels as an 8-bit mask (for PNG output); needs K ≤ 256.
    public var mask: LabelMask {
        LabelMask(width: width, height: height, labels: labels.map { label in
            precondition(label >= 0 && label <= 255, "SegmentationPrediction.mask: class \(label) does not fit in 8 bits")
            return UInt8(label)
        })
    }
}

public struct Inference {
    public let model: SegmentationModel
    public var options: InferenceOptions

    public init(model: SegmentationModel, options: InferenceOptions = InferenceOptions()) {
        self.model = model
        self.options = options
    }

    // MARK: Entry points

    /// Prediction for a sample that went through the test transforms (image normalised, resized; the
    /// original size in `originalWidth/Height`).
    public func predict(_ sample: Sample, probabilities: Bool = false) -> SegmentationPrediction {
        predict(image: Self.imageTensor(sample.image), originalHeight: sample.originalHeight,
                originalWidth: sample.originalWidth, probabilities: probabilities)
    }

    /// image [1, 3, H, W] → prediction at H0 × W0 (and optionally the probabilities [K, H0, W0]).
    public func predict(image: Tensor, originalHeight: Int, originalWidth: Int, probabilities wantProbabilities: Bool = false) -> SegmentationPrediction {
        precondition(originalHeight > 0 && originalWidth > 0, "Inference: original size \(originalHeight)×\(originalWidth) is empty")
        return evaluationMode {
            var views = [viewLogits(image)]
            if options.flip { views.append(Self.flippedHorizontally(viewLogits(Self.flippedHorizontally(image)))) }

            if views.count == 2 && options.flipAverage == .probabilities {
                let merged = Self.softmaxResized(views[0], height: originalHeight, width: originalWidth)
                Self.addInPlace(merged, Self.softmaxResized(views[1], height: originalHeight, width: originalWidth), scale: 1)
                Self.scaleInPlace(merged, 0.5)
                let labels = Self.argmaxResized(merged, height: originalHeight, width: originalWidth)
                return SegmentationPrediction(width: originalWidth, height: originalHeight, labels: labels,
                                              probabilities: wantProbabilities ? merged : nil)
            }
            let logits = views[0]
            if views.count == 2 {
                Self.addInPlace(logits, views[1], scale: 1)
                Self.scaleInPlace(logits, 0.5)
            }
            let labels = Self.argmaxResized(logits, height: originalHeight, width: originalWidth)
            let probabilities = wantProbabilities ? Self.softmaxResized(logits, height: originalHeight, width: originalWidth) : nil
            return SegmentationPrediction(width: originalWidth, height: originalHeight, labels: labels, probabilities: probabilities)
        }
    }

    /// image [1, 3, H, W] → logits [K, H, W] at the input size (mode and flip applied, before the final resize).
    public func logits(_ image: Tensor) -> Tensor {
        evaluationMode {
            let logits = viewLogits(image)
            if options.flip {
                Self.addInPlace(logits, Self.flippedHorizontally(viewLogits(Self.flippedHorizontally(image))), scale: 1)
                Self.scaleInPlace(logits, 0.5)
            }
            return logits
        }
    }

    /// No graph, eval-mode layers (dropout off, BatchNorm running statistics); the model's mode is restored.
    private func evaluationMode<T>(_ body: () -> T) -> T {
        let wasTraining = model.isTraining
        model.setTraining(false)
        defer { model.setTraining(wasTraining) }
        return Autograd.withNoGrad(body)
    }

    // MARK: Modes

    /// Logits [K, H, W] of one view (the image or its mirror) under the configured mode.
    private func viewLogits(_ image: Tensor) -> Tensor {
        precondition(image.rank == 4 && image.shape[0] == 1 && image.shape[1] == 3,
                     "Inference: image must be [1, 3, H, W], got \(image.shape)")
        switch options.mode {
        case .whole: return forward(image)
        case .slide(let windows): return slide(image, windows: windows)
        }
    }

    /// [1, 3, h, w] → [K, h, w]: the model's logits upsampled to its input.
    private func forward(_ image: Tensor) -> Tensor {
        let context = ForwardContext(taskIds: options.taskId.map { [$0] } ?? [])
        let out = model(image, context: context)
        return out.reshaped(Array(out.shape.dropFirst()))
    }

    /// mmseg slide_inference: sum window logits into a full-size buffer, count the windows per pixel, divide.
    private func slide(_ image: Tensor, windows: SlideWindows) -> Tensor {
        let height = image.shape[2], width = image.shape[3]
        let boxes = windows.boxes(height: height, width: width)
        let classes = model.classes(task: options.taskId ?? 0), plane = height * width
        let sum = Tensor.zeros([classes, height, width])
        var windowCount = [Float](repeating: 0, count: plane)
        for box in boxes {
            let window = forward(Self.crop(image, box))
            precondition(window.shape == [classes, box.height, box.width],
                         "slide inference: window \(box) gave logits \(window.shape), expected [\(classes), \(box.height), \(box.width)]")
            let ps = sum.data, pw = window.data, boxPlane = box.height * box.width
            Parallel.chunks(classes, minimumChunk: max(1, 65536 / max(boxPlane, 1))) { range in
                for k in range {
                    for y in 0..<box.height {
                        let src = pw + k * boxPlane + y * box.width
                        let dst = ps + k * plane + (box.y1 + y) * width + box.x1
                        for x in 0..<box.width { dst[x] += src[x] }
                    }
                }
            }
            windowCount.withUnsafeMutableBufferPointer { count in
                for y in box.y1..<box.y2 {
                    let row = count.baseAddress! + y * width
                    for x in box.x1..<box.x2 { row[x] += 1 }
                }
            }
        }
        windowCount.withUnsafeBufferPointer { count in
            let pc = count.baseAddress!, ps = sum.data
            precondition(!count.contains(0), "slide inference: a pixel of the \(height)×\(width) image is in no window")
            Parallel.chunks(classes, minimumChunk: max(1, 65536 / max(plane, 1))) { range in
                for k in range {
                    let p = ps + k * plane
                    for i in 0..<plane { p[i] /= pc[i] }
                }
            }
        }
        return sum
    }

    // MARK: Tensor helpers (batch 1, no graph)

    /// A normalised H × W × 3 image → [1, 3, H, W].
    public static func imageTensor(_ image: ImageBuffer) -> Tensor {
        precondition(image.channels == 3, "Inference: image has \(image.channels) channels, the model takes 3")
        return Autograd.withNoGrad {
            Tensor(shape: [1, image.height, image.width, 3], values: image.pixels).permuted([0, 3, 1, 2])
        }
    }

    /// The rows y1..<y2 and columns x1..<x2 of [1, C, H, W].
    static func crop(_ image: Tensor, _ box: WindowBox) -> Tensor {
        let channels = image.shape[1], height = image.shape[2], width = image.shape[3]
        precondition(box.y1 >= 0 && box.x1 >= 0 && box.y2 <= height && box.x2 <= width && box.height > 0 && box.width > 0,
                     "Inference.crop: window \(box) outside the \(height)×\(width) image")
        let out = Tensor(uninitializedShape: [1, channels, box.height, box.width])
        for c in 0..<channels {
            for y in 0..<box.height {
                (out.data + (c * box.height + y) * box.width)
                    .update(from: image.data + (c * height + box.y1 + y) * width + box.x1, count: box.width)
            }
        }
        return out
    }

    /// Mirror left ↔ right along the last axis (any rank ≥ 2).
    public static func flippedHorizontally(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2, "flippedHorizontally: needs rows and columns, got \(x.shape)")
        let width = x.shape[x.rank - 1], rows = width == 0 ? 0 : x.count / width
        let out = Tensor(uninitializedShape: x.shape)
        let src = x.data, dst = out.data
        Parallel.chunks(rows, minimumChunk: max(1, 65536 / max(width, 1))) { range in
            for r in range {
                let s = src + r * width, d = dst + r * width
                for i in 0..<width { d[i] = s[width - 1 - i] }
            }
        }
        return out
    }

    static func addInPlace(_ a: Tensor, _ b: Tensor, scale: Float) {
        precondition(a.shape == b.shape, "Inference: adding \(b.shape) into \(a.shape)")
        let pa = a.data, pb = b.data
        Parallel.chunks(a.count, minimumChunk: 1 << 16) { range in
            for i in range { pa[i] += scale * pb[i] }
        }
    }

    static func scaleInPlace(_ a: Tensor, _ factor: Float) {
        let pa = a.data
        Parallel.chunks(a.count, minimumChunk: 1 << 16) { range in
            for i in range { pa[i] *= factor }
        }
    }

    /// Softmax over classes of logits [K, H, W] resized to [K, height, width] (bilinear, align_corners=False).
    public static func softmaxResized(_ logits: Tensor, height: Int, width: Int) -> Tensor {
        precondition(logits.rank == 3, "softmaxResized: logits must be [K, H, W], got \(logits.shape)")
        let classes = logits.shape[0]
        return Autograd.withNoGrad {
            let resized = logits.reshaped([1] + logits.shape).resizedBilinear(height: height, width: width)
            return resized.reshaped([classes, height * width]).transposed(0, 1)   // [H0·W0, K]: softmax runs on the last axis
                .softmax()
                .transposed(0, 1).reshaped([classes, height, width])
        }
    }

    /// argmax over classes of logits [K, H, W] (or [1, K, H, W]) bilinearly resized to height × width
    /// (align_corners=False), without materialising the resized [K, height, width] logits: each output row is
    /// interpolated one class at a time against a running maximum. Same arithmetic as `Tensor.resizedBilinear`,
    /// so the result equals `argmax(resizedBilinear(logits))`; ties go to the lowest class, as torch.argmax.
    public static func argmaxResized(_ logits: Tensor, height outH: Int, width outW: Int) -> [Int32] {
        precondition((logits.rank == 3) || (logits.rank == 4 && logits.shape[0] == 1),
                     "argmaxResized: logits must be [K, H, W] or [1, K, H, W], got \(logits.shape)")
        precondition(outH > 0 && outW > 0, "argmaxResized: output size \(outH)×\(outW) must be positive")
        let dims = Array(logits.shape.suffix(3))
        let classes = dims[0], inH = dims[1], inW = dims[2], inPlane = inH * inW
        precondition(classes >= 1 && inH >= 1 && inW >= 1, "argmaxResized: empty logits \(logits.shape)")
        var result = [Int32](repeating: 0, count: outH * outW)
        let px = logits.data
        let minimumRows = max(1, 65536 / max(classes * outW, 1))

        if inH == outH && inW == outW {
            result.withUnsafeMutableBufferPointer { out in
                let po = out.baseAddress!
                Parallel.chunks(outH, minimumChunk: minimumRows) { range in
                    let best = UnsafeMutablePointer<Float>.allocate(capacity: outW)
                    defer { best.deallocate() }
                    for y in range {
                        let labels = po + y * outW
                        best.update(from: px + y * inW, count: outW)
                        for k in 1..<classes {
                            let row = px + k * inPlane + y * inW
                            for x in 0..<outW where row[x] > best[x] { best[x] = row[x]; labels[x] = Int32(k) }
                        }
                    }
                }
            }
            return result
        }

        let rows = BilinearAxis(inSize: inH, outSize: outH), cols = BilinearAxis(inSize: inW, outSize: outW)
        let blendRowsFirst = inW < 2 * outW   // the branch Tensor.resizedBilinear takes, for identical rounding
        result.withUnsafeMutableBufferPointer { out in
            let po = out.baseAddress!
            Parallel.chunks(outH, minimumChunk: minimumRows) { range in
                let best = UnsafeMutablePointer<Float>.allocate(capacity: outW)
                let value = UnsafeMutablePointer<Float>.allocate(capacity: outW)
                let blended = UnsafeMutablePointer<Float>.allocate(capacity: inW)
                defer { best.deallocate(); value.deallocate(); blended.deallocate() }
                for oy in range {
                    let labels = po + oy * outW
                    let wt = rows.lowWeight[oy], wb = rows.highWeight[oy]
                    for k in 0..<classes {
                        let top = px + k * inPlane + rows.low[oy] * inW, bottom = px + k * inPlane + rows.high[oy] * inW
                        cols.interpolateRow(top: top, bottom: bottom, topWeight: wt, bottomWeight: wb, inputWidth: inW,
                                            blendFirst: blendRowsFirst, scratch: blended, into: k == 0 ? best : value)
                        if k > 0 {
                            for ox in 0..<outW where value[ox] > best[ox] { best[ox] = value[ox]; labels[ox] = Int32(k) }
                        }
                    }
                }
            }
        }
        return result
    }
}
