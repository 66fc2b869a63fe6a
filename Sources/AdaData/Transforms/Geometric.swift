// Geometric transforms with mmseg/mmcv semantics: keep-ratio (random) resize, random crop with a cap on the
// dominant class, horizontal flip and bottom/right padding. Image and mask always move together; masks are
// resampled with nearest neighbour and padded with 255, so no label is ever invented by interpolation.
//
// Legend: H×W pixels, C channels (3 for RGB); image = H×W×C interleaved Float, mask = H×W UInt8 (255 = ignore).
// Sizes are written width×height (cv2 / mmcv order) in the resize helpers and (height, width) in crop/pad,
// matching mmseg's `scale=(w, h)` and `crop_size=(h, w)`.
//
// The transforms are single-threaded on purpose: the loader runs one sample per core, so a nested parallel
// loop here would only oversubscribe the two cores.
import AdaTensor

// MARK: - Resampling kernels

/// Resize, crop, flip and pad on raw buffers; every transform below is a thin wrapper around these.
public enum ImageGeometry {
    /// mmcv `rescale_size` with a (long, short) bound: the largest factor with long side ≤ max(scale) and
    /// short side ≤ min(scale); new size = int(w·factor + 0.5), int(h·factor + 0.5) (at least 1).
    public static func keepRatioSize(width: Int, height: Int, scale: (Int, Int)) -> (width: Int, height: Int) {
        precondition(width > 0 && height > 0, "keepRatioSize: empty image \(width)×\(height)")
        precondition(scale.0 > 0 && scale.1 > 0, "keepRatioSize: scale \(scale) must be positive")
        let maxLong = Double(max(scale.0, scale.1)), maxShort = Double(min(scale.0, scale.1))
        let factor = min(maxLong / Double(max(width, height)), maxShort / Double(min(width, height)))
        return (max(1, Int(Double(width) * factor + 0.5)), max(1, Int(Double(height) * factor + 0.5)))
    }

    /// Source taps of cv2 INTER_LINEAR along one axis: output d samples (d + ½)·in/out − ½ between
    /// `lower[d]` and `upper[d]` with weight `fraction[d]` on the upper tap, clamped at both borders.
    struct LinearTaps {
        var lower: [Int]
        var upper: [Int]
        var fraction: [Float]

        init(input: Int, output: Int) {
            // cv2 computes scale as 1 / (out / in) in double, the position in float.
            let scale = 1.0 / (Double(output) / Double(input))
            lower = [Int](repeating: 0, count: output)
            upper = [Int](repeating: 0, count: output)
            fraction = [Float](repeating: 0, count: output)
            for d in 0..<output {
                let position = Float((Double(d) + 0.5) * scale - 0.5)
                var source = Int(position.rounded(.down))
                var weight = position - Float(source)
                if source < 0 { source = 0; weight = 0 }
                if source >= input - 1 { source = input - 1; weight = 0 }
                lower[d] = source
                upper[d] = min(source + 1, input - 1)
                fraction[d] = weight
            }
        }
    }

    /// Source index of cv2 INTER_NEAREST along one axis: floor(d · in/out), clamped to in − 1.
    static func nearestTaps(input: Int, output: Int) -> [Int] {
        let scale = 1.0 / (Double(output) / Double(input))
        return (0..<output).map { min(Int((Double($0) * scale).rounded(.down)), input - 1) }
    }

    /// Bilinear resize with half-pixel centres (cv2.resize INTER_LINEAR on float32, no antialiasing), done
    /// separably: each needed source row is resampled horizontally once into a row buffer, then output rows
    /// blend two such rows.
    public static func resizeBilinear(_ image: ImageBuffer, width: Int, height: Int) -> ImageBuffer {
        precondition(width > 0 && height > 0, "resizeBilinear: target \(width)×\(height) must be positive")
        precondition(image.width > 0 && image.height > 0, "resizeBilinear: empty source \(image.width)×\(image.height)")
        if width == image.width && height == image.height { return image }
        let channels = image.channels, rowLength = width * channels, sourceRowLength = image.width * channels
        let columns = LinearTaps(input: image.width, output: width)
        let rows = LinearTaps(input: image.height, output: height)
        // Column taps pre-multiplied by the channel count, so the inner loop indexes the interleaved row directly.
        let lowerOffsets = columns.lower.map { $0 * channels }, upperOffsets = columns.upper.map { $0 * channels }

        let pixels = [Float](unsafeUninitializedCapacity: rowLength * height) { output, initialised in
            var rowA = UnsafeMutablePointer<Float>.allocate(capacity: rowLength)
            var rowB = UnsafeMutablePointer<Float>.allocate(capacity: rowLength)
            defer { rowA.deallocate(); rowB.deallocate() }
            var rowAIndex = -1, rowBIndex = -1
            image.pixels.withUnsafeBufferPointer { source in
            lowerOffsets.withUnsafeBufferPointer { lo in
            upperOffsets.withUnsafeBufferPointer { hi in
            columns.fraction.withUnsafeBufferPointer { fx in
                func horizontal(_ sourceRow: Int, into row: UnsafeMutablePointer<Float>) {
                    let s = source.baseAddress! + sourceRow * sourceRowLength
                    if channels == 3 {
                        for x in 0..<width {
                            let a = lo[x], b = hi[x], w1 = fx[x], w0 = 1 - w1
                            row[3 * x] = s[a] * w0 + s[b] * w1
                            row[3 * x + 1] = s[a + 1] * w0 + s[b + 1] * w1
                            row[3 * x + 2] = s[a + 2] * w0 + s[b + 2] * w1
                        }
                    } else {
                        for x in 0..<width {
                            let a = lo[x], b = hi[x], w1 = fx[x], w0 = 1 - w1
                            for c in 0..<channels { row[channels * x + c] = s[a + c] * w0 + s[b + c] * w1 }
                        }
                    }
                }
                for y in 0..<height {
                    let top = rows.lower[y], bottom = rows.upper[y], w1 = rows.fraction[y], w0 = 1 - w1
                    // Keep the top source row in A and the bottom one in B, reusing rows from the last output row.
                    if rowAIndex != top {
                        if rowBIndex == top { swap(&rowA, &rowB); swap(&rowAIndex, &rowBIndex) }
                        else { horizontal(top, into: rowA); rowAIndex = top }
                    }
                    let out = output.baseAddress! + y * rowLength
                    if w1 == 0 {
                        out.update(from: rowA, count: rowLength)
                        continue
                    }
                    if rowBIndex != bottom { horizontal(bottom, into: rowB); rowBIndex = bottom }
                    for i in 0..<rowLength { out[i] = rowA[i] * w0 + rowB[i] * w1 }
                }
            }}}}
            initialised = rowLength * height
        }
        return ImageBuffer(width: width, height: height, channels: channels, pixels: pixels)
    }

    /// Nearest-neighbour resize (cv2 INTER_NEAREST: source = floor(dst · in/out)); labels are copied, never mixed.
    public static func resizeNearest(_ mask: LabelMask, width: Int, height: Int) -> LabelMask {
        precondition(width > 0 && height > 0, "resizeNearest: target \(width)×\(height) must be positive")
        precondition(mask.width > 0 && mask.height > 0, "resizeNearest: empty source \(mask.width)×\(mask.height)")
        if width == mask.width && height == mask.height { return mask }
        let columns = nearestTaps(input: mask.width, output: width)
        let rows = nearestTaps(input: mask.height, output: height)
        let sourceWidth = mask.width
        let labels = [UInt8](unsafeUninitializedCapacity: width * height) { output, initialised in
            mask.labels.withUnsafeBufferPointer { source in
            columns.withUnsafeBufferPointer { xs in
                for y in 0..<height {
                    let s = source.baseAddress! + rows[y] * sourceWidth, out = output.baseAddress! + y * width
                    if y > 0 && rows[y] == rows[y - 1] {
                        out.update(from: out - width, count: width) // same source row as the row above
                        continue
                    }
                    for x in 0..<width { out[x] = s[xs[x]] }
                }
            }}
            initialised = width * height
        }
        return LabelMask(width: width, height: height, labels: labels)
    }

    /// The region rows y..<y+height, columns x..<x+width, which must lie inside the image.
    public static func crop(_ image: ImageBuffer, x: Int, y: Int, width: Int, height: Int) -> ImageBuffer {
        precondition(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= image.width && y + height <= image.height,
                     "crop: box x \(x) y \(y) \(width)×\(height) outside image \(image.width)×\(image.height)")
        if x == 0 && y == 0 && width == image.width && height == image.height { return image }
        let channels = image.channels, rowLength = width * channels, sourceRowLength = image.width * channels
        let pixels = [Float](unsafeUninitializedCapacity: rowLength * height) { output, initialised in
            image.pixels.withUnsafeBufferPointer { source in
                for row in 0..<height {
                    (output.baseAddress! + row * rowLength)
                        .update(from: source.baseAddress! + (y + row) * sourceRowLength + x * channels, count: rowLength)
                }
            }
            initialised = rowLength * height
        }
        return ImageBuffer(width: width, height: height, channels: channels, pixels: pixels)
    }

    public static func crop(_ mask: LabelMask, x: Int, y: Int, width: Int, height: Int) -> LabelMask {
        precondition(x >= 0 && y >= 0 && width > 0 && height > 0 && x + width <= mask.width && y + height <= mask.height,
                     "crop: box x \(x) y \(y) \(width)×\(height) outside mask \(mask.width)×\(mask.height)")
        if x == 0 && y == 0 && width == mask.width && height == mask.height { return mask }
        let labels = [UInt8](unsafeUninitializedCapacity: width * height) { output, initialised in
            mask.labels.withUnsafeBufferPointer { source in
                for row in 0..<height {
                    (output.baseAddress! + row * width).update(from: source.baseAddress! + (y + row) * mask.width + x, count: width)
                }
            }
            initialised = width * height
        }
        return LabelMask(width: width, height: height, labels: labels)
    }

    /// Mirrors every row in place (pixels keep their channel order).
    public static func flipHorizontally(_ image: inout ImageBuffer) {
        let width = image.width, height = image.height, channels = image.channels
        image.pixels.withUnsafeMutableBufferPointer { buffer in
            for y in 0..<height {
                let row = buffer.baseAddress! + y * width * channels
                var left = 0, right = width - 1
                while left < right {
                    let a = row + left * channels, b = row + right * channels
                    for c in 0..<channels { let t = a[c]; a[c] = b[c]; b[c] = t }
                    left += 1; right -= 1
                }
            }
        }
    }

    public static func flipHorizontally(_ mask: inout LabelMask) {
        let width = mask.width, height = mask.height
        mask.labels.withUnsafeMutableBufferPointer { buffer in
            for y in 0..<height {
                let row = buffer.baseAddress! + y * width
                var left = 0, right = width - 1
                while left < right { let t = row[left]; row[left] = row[right]; row[right] = t; left += 1; right -= 1 }
            }
        }
    }

    /// Pads at the bottom and right to at least height×width with `value` (never crops).
    public static func pad(_ image: ImageBuffer, height: Int, width: Int, value: Float) -> ImageBuffer {
        let newWidth = max(width, image.width), newHeight = max(height, image.height)
        if newWidth == image.width && newHeight == image.height { return image }
        let channels = image.channels, rowLength = newWidth * channels, sourceRowLength = image.width * channels
        var padded = ImageBuffer(width: newWidth, height: newHeight, channels: channels, fill: value)
        padded.pixels.withUnsafeMutableBufferPointer { output in
            image.pixels.withUnsafeBufferPointer { source in
                for row in 0..<image.height {
                    (output.baseAddress! + row * rowLength).update(from: source.baseAddress! + row * sourceRowLength, count: sourceRowLength)
                }
            }
        }
        return padded
    }

    public static func pad(_ mask: LabelMask, height: Int, width: Int, value: UInt8) -> LabelMask {
        let newWidth = max(width, mask.width), newHeight = max(height, mask.height)
        if newWidth == mask.width && newHeight == mask.height { return mask }
        var labels = [UInt8](repeating: value, count: newWidth * newHeight)
        labels.withUnsafeMutableBufferPointer { output in
            mask.labels.withUnsafeBufferPointer { source in
                for row in 0..<mask.height {
                    (output.baseAddress! + row * newWidth).update(from: source.baseAddress! + row * mask.width, count: mask.width)
                }
            }
        }
        return LabelMask(width: newWidth, height: newHeight, labels: labels)
    }
}

/// Geometric steps move image and mask together, so they must start the same size.
@inline(__always)
private func requireAlignedMask(_ sample: Sample, _ step: String) {
    if let mask = sample.mask {
        precondition(mask.width == sample.image.width && mask.height == sample.image.height,
                     "\(step): mask \(mask.width)×\(mask.height) does not match image \(sample.image.width)×\(sample.image.height) in \(sample.name)")
    }
}

/// Resizes image (bilinear) and mask (nearest) to width×height.
private func resizeSample(_ sample: inout Sample, width: Int, height: Int, resizeMask: Bool) {
    sample.image = ImageGeometry.resizeBilinear(sample.image, width: width, height: height)
    if resizeMask, let mask = sample.mask { sample.mask = ImageGeometry.resizeNearest(mask, width: width, height: height) }
}

// MARK: - Transforms

/// mmcv `RandomResize(scale, ratio_range, keep_ratio)`: ratio ~ U(ratioRange) (1 without a range), target
/// scale (int(scale.0·ratio), int(scale.1·ratio)); with `keepRatio` the image is rescaled so its long side
/// ≤ max(target) and its short side ≤ min(target) (see `ImageGeometry.keepRatioSize`), otherwise resized to
/// exactly width = target.0, height = target.1. ADE20K: scale (2048, 512), ratios 0.5…2.
public struct RandomResize: Transform {
    public var scale: (Int, Int)
    public var ratioRange: ClosedRange<Double>?
    public var keepRatio: Bool

    public init(scale: (Int, Int), ratioRange: ClosedRange<Double>?, keepRatio: Bool = true) {
        precondition(scale.0 > 0 && scale.1 > 0, "RandomResize: scale \(scale) must be positive")
        precondition(ratioRange.map { $0.lowerBound > 0 } ?? true, "RandomResize: ratio range \(ratioRange!) must be positive")
        self.scale = scale
        self.ratioRange = ratioRange
        self.keepRatio = keepRatio
    }

    /// The output width×height for an input of width×height at the given ratio.
    public func targetSize(width: Int, height: Int, ratio: Double) -> (width: Int, height: Int) {
        let target = (Int(Double(scale.0) * ratio), Int(Double(scale.1) * ratio))
        precondition(target.0 > 0 && target.1 > 0, "RandomResize: scale \(scale) × ratio \(ratio) rounds to zero")
        if keepRatio { return ImageGeometry.keepRatioSize(width: width, height: height, scale: target) }
        return (target.0, target.1)
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        requireAlignedMask(sample, "RandomResize")
        var ratio = 1.0
        if let range = ratioRange { ratio = range.lowerBound + (range.upperBound - range.lowerBound) * generator.nextDouble() }
        let size = targetSize(width: sample.image.width, height: sample.image.height, ratio: ratio)
        resizeSample(&sample, width: size.width, height: size.height, resizeMask: true)
    }
}

/// mmcv `Resize(scale, keep_ratio)` without randomness (test time). With `resizeMask: false` the mask keeps
/// its original resolution, as in mmseg's test pipeline (annotations are loaded after the resize and metrics
/// are computed at the original size).
public struct Resize: Transform {
    public var scale: (Int, Int)
    public var keepRatio: Bool
    public var resizeMask: Bool

    public init(scale: (Int, Int), keepRatio: Bool = true, resizeMask: Bool = true) {
        precondition(scale.0 > 0 && scale.1 > 0, "Resize: scale \(scale) must be positive")
        self.scale = scale
        self.keepRatio = keepRatio
        self.resizeMask = resizeMask
    }

    public func targetSize(width: Int, height: Int) -> (width: Int, height: Int) {
        if keepRatio { return ImageGeometry.keepRatioSize(width: width, height: height, scale: scale) }
        return (scale.0, scale.1)
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        if resizeMask { requireAlignedMask(sample, "Resize") }
        let size = targetSize(width: sample.image.width, height: sample.image.height)
        resizeSample(&sample, width: size.width, height: size.height, resizeMask: resizeMask)
    }
}

/// mmseg `RandomCrop(crop_size=(height, width), cat_max_ratio, ignore_index)`. Offsets are uniform in
/// [0, H − height] × [0, W − width]; an image smaller than the crop keeps what exists (Pad fills the rest).
/// With catMaxRatio < 1 the box is re-drawn while the most frequent non-ignored class covers ≥ catMaxRatio of
/// the non-ignored pixels or fewer than two classes are present — checked at most 10 times, exactly as mmseg
/// (so after ten failed checks the eleventh, unchecked box is kept).
public struct RandomCrop: Transform {
    public var height: Int
    public var width: Int
    public var catMaxRatio: Double
    public var ignoreIndex: UInt8

    public static let maximumChecks = 10

    public init(height: Int, width: Int, catMaxRatio: Double = 0.75, ignoreIndex: UInt8 = 255) {
        precondition(height > 0 && width > 0, "RandomCrop: crop \(height)×\(width) (h×w) must be positive")
        precondition(catMaxRatio > 0, "RandomCrop: catMaxRatio \(catMaxRatio) must be positive")
        self.height = height
        self.width = width
        self.catMaxRatio = catMaxRatio
        self.ignoreIndex = ignoreIndex
    }

    /// The crop box (x, y, width, height), clipped to the image.
    public func chooseBox(imageWidth: Int, imageHeight: Int, mask: LabelMask?,
                          generator: inout RandomGenerator) -> (x: Int, y: Int, width: Int, height: Int) {
        let marginY = max(imageHeight - height, 0), marginX = max(imageWidth - width, 0)
        let boxWidth = min(width, imageWidth), boxHeight = min(height, imageHeight)
        func draw() -> (x: Int, y: Int, width: Int, height: Int) {
            let y = generator.int(below: marginY + 1) // mmseg draws the row offset first
            let x = generator.int(below: marginX + 1)
            return (x, y, boxWidth, boxHeight)
        }
        var box = draw()
        guard catMaxRatio < 1, let mask else { return box }
        var counts = [Int](repeating: 0, count: 256)
        for _ in 0..<Self.maximumChecks {
            if acceptable(mask, box, counts: &counts) { break }
            box = draw()
        }
        return box
    }

    /// More than one non-ignored class in the box, and the largest below catMaxRatio of the non-ignored pixels.
    func acceptable(_ mask: LabelMask, _ box: (x: Int, y: Int, width: Int, height: Int), counts: inout [Int]) -> Bool {
        counts.withUnsafeMutableBufferPointer { histogram in
            histogram.update(repeating: 0)
            mask.labels.withUnsafeBufferPointer { labels in
                for row in box.y..<(box.y + box.height) {
                    let line = labels.baseAddress! + row * mask.width + box.x
                    for x in 0..<box.width { histogram[Int(line[x])] += 1 }
                }
            }
            histogram[Int(ignoreIndex)] = 0
            var total = 0, largest = 0, classes = 0
            for count in histogram where count > 0 { total += count; largest = max(largest, count); classes += 1 }
            return classes > 1 && Double(largest) / Double(total) < catMaxRatio
        }
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        requireAlignedMask(sample, "RandomCrop")
        let box = chooseBox(imageWidth: sample.image.width, imageHeight: sample.image.height, mask: sample.mask,
                            generator: &generator)
        sample.image = ImageGeometry.crop(sample.image, x: box.x, y: box.y, width: box.width, height: box.height)
        if let mask = sample.mask {
            sample.mask = ImageGeometry.crop(mask, x: box.x, y: box.y, width: box.width, height: box.height)
        }
    }
}

/// mmcv `RandomFlip(prob, direction='horizontal')`: mirrors image and mask together with probability p
/// (one draw per sample, always taken so the random stream does not depend on p).
public struct RandomFlip: Transform {
    public var probability: Double

    public init(probability: Double = 0.5) {
        precondition((0...1).contains(probability), "RandomFlip: probability \(probability) outside [0, 1]")
        self.probability = probability
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        requireAlignedMask(sample, "RandomFlip")
        guard generator.nextDouble() < probability else { return }
        ImageGeometry.flipHorizontally(&sample.image)
        if sample.mask != nil { ImageGeometry.flipHorizontally(&sample.mask!) }
    }
}

/// mmseg `Pad(size=(width, height), pad_val=dict(img=0, seg=255))` at the bottom and right, to at least
/// height×width. In the pipeline it follows Normalize, so padded pixels are 0 in normalised units (as mmseg's
/// SegDataPreProcessor does).
public struct Pad: Transform {
    public var height: Int
    public var width: Int
    public var imageValue: Float
    public var maskValue: UInt8

    public init(height: Int, width: Int, imageValue: Float = 0, maskValue: UInt8 = 255) {
        precondition(height > 0 && width > 0, "Pad: size \(height)×\(width) (h×w) must be positive")
        self.height = height
        self.width = width
        self.imageValue = imageValue
        self.maskValue = maskValue
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        requireAlignedMask(sample, "Pad")
        sample.image = ImageGeometry.pad(sample.image, height: height, width: width, value: imageValue)
        if let mask = sample.mask { sample.mask = ImageGeometry.pad(mask, height: height, width: width, value: maskValue) }
    }
}
