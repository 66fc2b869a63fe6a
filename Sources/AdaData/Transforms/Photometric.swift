// Colour transforms: mmseg's PhotoMetricDistortion (brightness, contrast, saturation, hue) and mmcv's
// Normalize, on float RGB images with values 0–255.
//
// Legend: H×W pixels, C = 3 channels interleaved (R, G, B).
//
// Differences from mmseg, all deliberate: mmseg works on uint8 BGR images and truncates to uint8 after every
// step (`astype(np.uint8)`), and does saturation/hue through cv2's 8-bit HSV (H stored as degrees/2 in
// 0…179, S and V in 0…255). We stay in float32 throughout (no truncation bias, no quantisation of H to 2°
// steps) and use the continuous HSV model (H in degrees 0…360, S in 0…1, V = max channel). The random
// parameters keep mmseg's units: the hue delta is an integer in [−hueDelta, hueDelta) of OpenCV 8-bit hue
// units, i.e. 2° each, so the default 18 shifts hue by −36°…+34°. The saturation factor multiplies S and
// clips it to 1 (mmseg clips the uint8 S to 255). Channel order does not matter for any step (hue is
// defined by which channel is largest, whatever the storage order).
import AdaTensor

/// mmseg `PhotoMetricDistortion`: each of brightness, contrast, saturation and hue is applied with
/// probability `probability` (mmseg: `random.randint(2)`, i.e. ½); contrast comes before the HSV steps
/// (mmseg mode 1) or after them (mode 0), 50/50. Every step clips to [0, 255].
public struct PhotoMetricDistortion: Transform {
    public var brightnessDelta: Float
    public var contrastRange: ClosedRange<Float>
    public var saturationRange: ClosedRange<Float>
    /// In OpenCV 8-bit hue units (2° each).
    public var hueDelta: Int
    /// Chance of each of the four branches (0 makes the transform the identity; the contrast position is
    /// still drawn 50/50 so the random stream has the same shape).
    public var probability: Double

    public init(brightnessDelta: Float = 32, contrastRange: ClosedRange<Float> = 0.5...1.5,
                saturationRange: ClosedRange<Float> = 0.5...1.5, hueDelta: Int = 18, probability: Double = 0.5) {
        precondition(brightnessDelta >= 0, "PhotoMetricDistortion: brightnessDelta \(brightnessDelta) must be ≥ 0")
        precondition(contrastRange.lowerBound >= 0 && saturationRange.lowerBound >= 0,
                     "PhotoMetricDistortion: contrast \(contrastRange) and saturation \(saturationRange) factors must be ≥ 0")
        precondition(hueDelta >= 0 && hueDelta <= 90, "PhotoMetricDistortion: hueDelta \(hueDelta) outside 0…90 (2° units)")
        precondition((0...1).contains(probability), "PhotoMetricDistortion: probability \(probability) outside [0, 1]")
        self.brightnessDelta = brightnessDelta
        self.contrastRange = contrastRange
        self.saturationRange = saturationRange
        self.hueDelta = hueDelta
        self.probability = probability
    }

    /// The random decisions for one image; nil = branch skipped.
    public struct Parameters: Equatable, Sendable {
        /// Added to every channel.
        public var brightness: Float?
        /// Multiplies every channel.
        public var contrast: Float?
        /// mmseg mode 1: contrast before the HSV steps; mode 0: after them.
        public var contrastFirst: Bool
        /// Multiplies HSV saturation.
        public var saturation: Float?
        /// Hue shift in OpenCV 8-bit units (2° each).
        public var hueShift: Int?

        public init(brightness: Float? = nil, contrast: Float? = nil, contrastFirst: Bool = false,
                    saturation: Float? = nil, hueShift: Int? = nil) {
            self.brightness = brightness
            self.contrast = contrast
            self.contrastFirst = contrastFirst
            self.saturation = saturation
            self.hueShift = hueShift
        }

        public static let identity = Parameters()
    }

    /// Draws in mmseg's order: brightness flag (+ delta), mode, [mode 1: contrast flag (+ factor)], saturation
    /// flag (+ factor), hue flag (+ delta), [mode 0: contrast flag (+ factor)].
    public func drawParameters(generator: inout RandomGenerator) -> Parameters {
        var parameters = Parameters()
        func branch() -> Bool { generator.nextDouble() < probability }
        func uniform(_ range: ClosedRange<Float>) -> Float {
            range.lowerBound + (range.upperBound - range.lowerBound) * Float(generator.nextDouble())
        }
        if branch() { parameters.brightness = uniform(-brightnessDelta...brightnessDelta) }
        parameters.contrastFirst = generator.int(below: 2) == 1
        if parameters.contrastFirst, branch() { parameters.contrast = uniform(contrastRange) }
        if branch() { parameters.saturation = uniform(saturationRange) }
        // numpy randint(-d, d) excludes d.
        if branch() { parameters.hueShift = hueDelta == 0 ? 0 : generator.int(below: 2 * hueDelta) - hueDelta }
        if !parameters.contrastFirst, branch() { parameters.contrast = uniform(contrastRange) }
        return parameters
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        let parameters = drawParameters(generator: &generator)
        Self.apply(parameters, to: &sample.image)
    }

    /// Applies drawn parameters in mmseg's order.
    public static func apply(_ parameters: Parameters, to image: inout ImageBuffer) {
        if let delta = parameters.brightness { adjustBrightness(&image, delta: delta) }
        if parameters.contrastFirst, let factor = parameters.contrast { adjustContrast(&image, factor: factor) }
        // mmseg converts to HSV and back separately for saturation and for hue; in float32 the round trip is
        // exact up to rounding, so one pass does both.
        if parameters.saturation != nil || parameters.hueShift != nil {
            adjustSaturationAndHue(&image, saturation: parameters.saturation ?? 1, hueShift: parameters.hueShift ?? 0)
        }
        if !parameters.contrastFirst, let factor = parameters.contrast { adjustContrast(&image, factor: factor) }
    }

    /// x ← clip(x + delta, 0, 255).
    public static func adjustBrightness(_ image: inout ImageBuffer, delta: Float) {
        image.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = min(max(p[i] + delta, 0), 255) }
        }
    }

    /// x ← clip(x · factor, 0, 255).
    public static func adjustContrast(_ image: inout ImageBuffer, factor: Float) {
        image.pixels.withUnsafeMutableBufferPointer { p in
            for i in 0..<p.count { p[i] = min(max(p[i] * factor, 0), 255) }
        }
    }

    /// In HSV: S ← min(S · saturation, 1), H ← (H + 2°·hueShift) mod 360°, V unchanged; back to RGB, clipped.
    /// Written branch-free (selects instead of per-pixel branches on the largest channel, which mispredict on
    /// real images) so the loop vectorises.
    public static func adjustSaturationAndHue(_ image: inout ImageBuffer, saturation: Float, hueShift: Int) {
        precondition(image.channels == 3, "PhotoMetricDistortion: HSV steps need 3 channels, got \(image.channels)")
        precondition(saturation >= 0, "PhotoMetricDistortion: saturation factor \(saturation) must be ≥ 0")
        // Hue is handled in sixths of a turn (60° sectors): h6 ∈ [0, 6).
        let shiftSectors = Float(2 * hueShift) / 60
        let pixelCount = image.width * image.height
        image.pixels.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            for i in 0..<pixelCount {
                let r = p[3 * i], g = p[3 * i + 1], b = p[3 * i + 2]
                let value = max(r, max(g, b)), minimum = min(r, min(g, b)), chroma = value - minimum
                // Grey pixels (chroma 0) get S = 0 and come back as (V, V, V), i.e. unchanged.
                let inverseChroma: Float = chroma > 0 ? 1 / chroma : 0
                // RGB → hue in sectors: the largest channel picks the formula (red wins ties, then green, as cv2).
                let redHue = (g - b) * inverseChroma, greenHue = 2 + (b - r) * inverseChroma, blueHue = 4 + (r - g) * inverseChroma
                var hue = value == r ? redHue : (value == g ? greenHue : blueHue)
                hue += shiftSectors
                hue -= 6 * (hue * (1 / 6)).rounded(.down)
                let s = min(chroma * inverseValue(value) * saturation, 1)
                // HSV → RGB: channel(n) = V − V·S·clamp(min(k, 4 − k), 0, 1) with k = (n + h6) mod 6, n = 5, 3, 1.
                let vs = value * s
                p[3 * i] = hsvChannel(5, hue: hue, value: value, vs: vs)
                p[3 * i + 1] = hsvChannel(3, hue: hue, value: value, vs: vs)
                p[3 * i + 2] = hsvChannel(1, hue: hue, value: value, vs: vs)
            }
        }
    }

    @inline(__always)
    static func inverseValue(_ value: Float) -> Float { value > 0 ? 1 / value : 0 }

    @inline(__always)
    static func hsvChannel(_ n: Float, hue: Float, value: Float, vs: Float) -> Float {
        var k = hue + n
        k = k >= 6 ? k - 6 : k
        let ramp = max(min(min(k, 4 - k), 1), 0)
        return min(max(value - vs * ramp, 0), 255)
    }
}

/// mmcv `Normalize(mean, std, to_rgb=True)`: x ← (x − mean[c]) · (1 / std[c]) per channel, in 0–255 units on
/// RGB images (ours are decoded as RGB, so no channel swap is needed). Defaults: ImageNet statistics.
public struct Normalize: Transform {
    public var mean: [Float]
    public var std: [Float]

    public static let imageNetMean: [Float] = [123.675, 116.28, 103.53]
    public static let imageNetStd: [Float] = [58.395, 57.12, 57.375]

    public init(mean: [Float] = Normalize.imageNetMean, std: [Float] = Normalize.imageNetStd) {
        precondition(mean.count == std.count && !mean.isEmpty, "Normalize: \(mean.count) means for \(std.count) stds")
        precondition(std.allSatisfy { $0 > 0 }, "Normalize: std \(std) must be positive")
        self.mean = mean
        self.std = std
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) {
        Self.normalize(&sample.image, mean: mean, std: std)
    }

    public static func normalize(_ image: inout ImageBuffer, mean: [Float], std: [Float]) {
        let channels = image.channels
        precondition(mean.count == channels, "Normalize: \(mean.count) means for a \(channels)-channel image")
        let pixelCount = image.width * image.height
        let inverse = std.map { 1 / $0 }
        image.pixels.withUnsafeMutableBufferPointer { buffer in
            let p = buffer.baseAddress!
            if channels == 3 {
                let (m0, m1, m2) = (mean[0], mean[1], mean[2]), (s0, s1, s2) = (inverse[0], inverse[1], inverse[2])
                for i in 0..<pixelCount {
                    p[3 * i] = (p[3 * i] - m0) * s0
                    p[3 * i + 1] = (p[3 * i + 1] - m1) * s1
                    p[3 * i + 2] = (p[3 * i + 2] - m2) * s2
                }
            } else {
                for i in 0..<pixelCount {
                    for c in 0..<channels { p[channels * i + c] = (p[channels * i + c] - mean[c]) * inverse[c] }
                }
            }
        }
    }
}
