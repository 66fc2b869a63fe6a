import AdaData
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

@Suite("Transforms")
struct TransformTests {
    // MARK: - Helpers

    /// Blocks of `block`×`block` pixels; label = (bx + 3·by) mod 11 (neighbouring blocks always differ), and the
    /// colour encodes the label: R = 20·label, G = 255 − 20·label, B = 100.
    static func blockySample(width: Int, height: Int, block: Int) -> Sample {
        var labels = [UInt8](repeating: 0, count: width * height)
        var pixels = [Float](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                let label = (x / block + 3 * (y / block)) % 11
                labels[y * width + x] = UInt8(label)
                pixels[3 * (y * width + x)] = Float(20 * label)
                pixels[3 * (y * width + x) + 1] = Float(255 - 20 * label)
                pixels[3 * (y * width + x) + 2] = 100
            }
        }
        return Sample(image: ImageBuffer(width: width, height: height, pixels: pixels),
                      mask: LabelMask(width: width, height: height, labels: labels), name: "blocks")
    }

    static func randomImage(width: Int, height: Int, seed: UInt64) -> ImageBuffer {
        var rng = RandomGenerator(seed: seed)
        return ImageBuffer(width: width, height: height, pixels: (0..<(width * height * 3)).map { _ in Float(rng.int(below: 256)) })
    }

    static func run(_ transforms: [Transform], on sample: Sample, seed: UInt64) throws -> Sample {
        var result = sample
        var rng = RandomGenerator(seed: seed)
        for transform in transforms { try transform.apply(&result, generator: &rng) }
        return result
    }

    /// Checks that every labelled pixel whose (2r+1)² mask neighbourhood lies inside the content region and holds
    /// a single label has the colour of that label; outside the content (padding) the mask must be 255 and the
    /// image 0. With source/output pixel ratio s, bilinear taps stay inside the nearest pixel's block when
    /// r ≥ ½ + ½/s and r ≥ ½/s − ½, so r = 2 covers every scale factor up to 3×.
    /// Returns (pixels whose colour was checked, failures).
    static func alignment(_ sample: Sample, radius: Int, contentWidth: Int, contentHeight: Int) -> (checked: Int, failures: Int) {
        let mask = sample.mask!, image = sample.image
        #expect(mask.width == image.width && mask.height == image.height)
        var checked = 0, failures = 0
        for y in 0..<mask.height {
            for x in 0..<mask.width {
                let label = mask.labels[y * mask.width + x]
                let colour = (image.pixels[3 * (y * image.width + x)], image.pixels[3 * (y * image.width + x) + 1],
                              image.pixels[3 * (y * image.width + x) + 2])
                if x >= contentWidth || y >= contentHeight {
                    if label != 255 || colour != (0, 0, 0) { failures += 1 }
                    continue
                }
                if label == 255 { failures += 1; continue } // the blocky mask has no ignored pixels
                var uniform = true
                for dy in -radius...radius where uniform {
                    for dx in -radius...radius {
                        let nx = x + dx, ny = y + dy
                        // Taps of pixels at a crop edge may come from outside the crop: check only full windows.
                        guard nx >= 0, ny >= 0, nx < contentWidth, ny < contentHeight else { uniform = false; break }
                        if mask.labels[ny * mask.width + nx] != label { uniform = false; break }
                    }
                }
                guard uniform else { continue }
                checked += 1
                let expected = (Float(20 * Int(label)), Float(255 - 20 * Int(label)), Float(100))
                if abs(colour.0 - expected.0) > 1e-3 || abs(colour.1 - expected.1) > 1e-3 || abs(colour.2 - expected.2) > 1e-3 {
                    failures += 1
                }
            }
        }
        return (checked, failures)
    }

    // MARK: - Geometric: alignment

    @Test func imageAndMaskStayAlignedThroughResizeCropFlipPad() throws {
        // 96×64 image, bound (128, 64) × ratio 0.75…3 ⇒ factor ≈ ratio (0.75×…3×), crop 72×80 (h×w): ratios below
        // 1.125 leave an image shorter than the crop, so partial crops and padding are exercised too.
        let original = Self.blockySample(width: 96, height: 64, block: 12)
        let steps: [Transform] = [
            RandomResize(scale: (128, 64), ratioRange: 0.75...3, keepRatio: true),
            RandomCrop(height: 72, width: 80, catMaxRatio: 0.75),
            RandomFlip(probability: 0.5),
            Pad(height: 72, width: 80),
        ]
        var sawPadding = false, sawUpscale = false, sawDownscale = false
        for seed in UInt64(0)..<24 {
            var sample = original
            var rng = RandomGenerator(seed: seed)
            var contentWidth = 0, contentHeight = 0
            for (index, step) in steps.enumerated() {
                try step.apply(&sample, generator: &rng)
                if index < 3 { contentWidth = sample.image.width; contentHeight = sample.image.height }
                if index == 0 {
                    sawUpscale = sawUpscale || sample.image.width > 96
                    sawDownscale = sawDownscale || sample.image.width < 96
                }
                let result = Self.alignment(sample, radius: 2, contentWidth: contentWidth, contentHeight: contentHeight)
                #expect(result.failures == 0, "seed \(seed) after step \(index): \(result.failures) misaligned pixels")
                #expect(result.checked > contentWidth * contentHeight / 6, "seed \(seed) step \(index): only \(result.checked) pixels checked")
            }
            #expect(sample.image.width == 80 && sample.image.height == 72 && sample.mask!.width == 80 && sample.mask!.height == 72)
            sawPadding = sawPadding || contentHeight < 72
        }
        #expect(sawPadding && sawUpscale && sawDownscale, "the seeds should cover padding, up- and downscaling")
    }

    @Test func flipMovesImageAndMaskTogether() throws {
        let original = Self.blockySample(width: 37, height: 11, block: 5)
        var flipped = original
        var rng = RandomGenerator(seed: 3)
        RandomFlip(probability: 1).apply(&flipped, generator: &rng)
        for y in 0..<11 {
            for x in 0..<37 {
                let mirrored = y * 37 + (36 - x)
                #expect(flipped.mask!.labels[y * 37 + x] == original.mask!.labels[mirrored])
                for c in 0..<3 { #expect(flipped.image.pixels[3 * (y * 37 + x) + c] == original.image.pixels[3 * mirrored + c]) }
            }
        }
        #expect(Self.alignment(flipped, radius: 0, contentWidth: 37, contentHeight: 11).failures == 0)
    }

    // MARK: - Geometric: resize

    @Test func keepRatioSizesByHand() {
        #expect(ImageGeometry.keepRatioSize(width: 480, height: 360, scale: (2048, 512)) == (683, 512))
        #expect(ImageGeometry.keepRatioSize(width: 500, height: 300, scale: (2048, 512)) == (853, 512))
        // A very wide image is bounded by the long side: factor 2048/3000, height int(68.27 + 0.5) = 68.
        #expect(ImageGeometry.keepRatioSize(width: 3000, height: 100, scale: (2048, 512)) == (2048, 68))
        // The (long, short) order of the bound does not matter.
        #expect(ImageGeometry.keepRatioSize(width: 360, height: 480, scale: (512, 2048)) == (512, 683))

        let resize = RandomResize(scale: (2048, 512), ratioRange: 0.5...2.0)
        // ratio 0.5: bound (1024, 256), factor 256/360 ⇒ int(341.33 + .5) = 341; ratio 2: (4096, 1024) ⇒ 1365×1024.
        #expect(resize.targetSize(width: 480, height: 360, ratio: 0.5) == (341, 256))
        #expect(resize.targetSize(width: 480, height: 360, ratio: 2.0) == (1365, 1024))
        #expect(RandomResize(scale: (300, 200), ratioRange: nil, keepRatio: false).targetSize(width: 480, height: 360, ratio: 1) == (300, 200))
        #expect(Resize(scale: (2048, 512)).targetSize(width: 480, height: 360) == (683, 512))
    }

    @Test func randomResizeWithoutRangeResizesImageAndMask() throws {
        let sample = Self.blockySample(width: 480, height: 360, block: 40)
        let resized = try Self.run([RandomResize(scale: (2048, 512), ratioRange: nil)], on: sample, seed: 1)
        #expect(resized.image.width == 683 && resized.image.height == 512)
        #expect(resized.mask!.width == 683 && resized.mask!.height == 512)
        #expect(Self.alignment(resized, radius: 2, contentWidth: 683, contentHeight: 512).failures == 0)
        // Ratios are drawn inside the range: every size lies between the ratio-0.5 and ratio-2 sizes.
        for seed in UInt64(0)..<20 {
            let r = try Self.run([RandomResize(scale: (2048, 512), ratioRange: 0.5...2.0)], on: sample, seed: seed)
            #expect((341...1365).contains(r.image.width) && (256...1024).contains(r.image.height), "\(r.image.width)×\(r.image.height)")
        }
    }

    @Test func testTimeResizeKeepsTheMaskAtOriginalResolution() throws {
        let sample = Self.blockySample(width: 480, height: 360, block: 40)
        let resized = try Self.run([Resize(scale: (2048, 512), resizeMask: false)], on: sample, seed: 0)
        #expect(resized.image.width == 683 && resized.image.height == 512)
        #expect(resized.mask == sample.mask)
        let both = try Self.run([Resize(scale: (2048, 512))], on: sample, seed: 0)
        #expect(both.mask!.width == 683 && both.mask!.height == 512)
    }

    @Test func bilinearMatchesOpenCVByHand() {
        // Upscale 2 → 4: positions −0.25 (clamped), 0.25, 0.75, 1.25 (clamped).
        let row = ImageBuffer(width: 2, height: 1, channels: 1, pixels: [0, 100])
        #expect(ImageGeometry.resizeBilinear(row, width: 4, height: 1).pixels == [0, 25, 75, 100])
        // Downscale 4 → 2: positions 0.5 and 2.5 (no antialiasing, as cv2 INTER_LINEAR).
        let wide = ImageBuffer(width: 4, height: 1, channels: 1, pixels: [0, 10, 20, 30])
        #expect(ImageGeometry.resizeBilinear(wide, width: 2, height: 1).pixels == [5, 25])
        // The same along rows.
        let column = ImageBuffer(width: 1, height: 2, channels: 1, pixels: [0, 100])
        #expect(ImageGeometry.resizeBilinear(column, width: 1, height: 4).pixels == [0, 25, 75, 100])
        // 2-D, 3 channels: a 2×2 → 3×3 upscale samples positions −1/6 (clamped), 0.5, 7/6 (clamped) per axis.
        let square = ImageBuffer(width: 2, height: 2, channels: 3, pixels: [0, 1, 2, 30, 31, 32, 60, 61, 62, 90, 91, 92])
        let up = ImageGeometry.resizeBilinear(square, width: 3, height: 3)
        let expectedRed: [Float] = [0, 15, 30, 30, 45, 60, 60, 75, 90]
        for i in 0..<9 {
            #expect(abs(up.pixels[3 * i] - expectedRed[i]) < 1e-4 && abs(up.pixels[3 * i + 2] - expectedRed[i] - 2) < 1e-4, "pixel \(i)")
        }
    }

    @Test func nearestMatchesOpenCVByHand() {
        let labels = LabelMask(width: 4, height: 1, labels: [1, 2, 3, 4])
        #expect(ImageGeometry.resizeNearest(labels, width: 2, height: 1).labels == [1, 3])
        let two = LabelMask(width: 2, height: 1, labels: [7, 9])
        #expect(ImageGeometry.resizeNearest(two, width: 5, height: 1).labels == [7, 7, 7, 9, 9])
        let tall = LabelMask(width: 1, height: 3, labels: [1, 2, 255])
        #expect(ImageGeometry.resizeNearest(tall, width: 2, height: 5).labels == [1, 1, 1, 1, 2, 2, 2, 2, 255, 255])
    }

    // MARK: - Geometric: crop

    @Test func cropSizesAndOffsetRange() throws {
        // Pixel value encodes its position, so the crop's first pixel reveals the offset.
        let width = 100, height = 80
        let image = ImageBuffer(width: width, height: height, channels: 3,
                                pixels: (0..<(width * height)).flatMap { [Float($0 % width), Float($0 / width), 0] })
        let sample = Sample(image: image, mask: LabelMask(width: width, height: height, labels: [UInt8](repeating: 1, count: width * height)), name: "grid")
        let crop = RandomCrop(height: 32, width: 48, catMaxRatio: 1)
        var xs = Set<Int>(), ys = Set<Int>()
        for seed in UInt64(0)..<3000 {
            let out = try Self.run([crop], on: sample, seed: seed)
            #expect(out.image.width == 48 && out.image.height == 32 && out.mask!.width == 48 && out.mask!.height == 32)
            let x = Int(out.image.pixels[0]), y = Int(out.image.pixels[1])
            xs.insert(x); ys.insert(y)
            // The whole crop is the contiguous region at that offset.
            #expect(out.image.pixels[3 * (31 * 48 + 47)] == Float(x + 47) && out.image.pixels[3 * (31 * 48 + 47) + 1] == Float(y + 31))
        }
        #expect(xs == Set(0...52) && ys == Set(0...48), "offsets must cover [0, W − w] × [0, H − h]")

        // An image smaller than the crop (in one or both axes) is kept as far as it exists.
        let small = Self.blockySample(width: 20, height: 10, block: 3)
        let out = try Self.run([RandomCrop(height: 32, width: 48)], on: small, seed: 5)
        #expect(out.image == small.image && out.mask == small.mask)
        let narrow = try Self.run([RandomCrop(height: 4, width: 48)], on: small, seed: 5)
        #expect(narrow.image.width == 20 && narrow.image.height == 4 && narrow.mask!.height == 4)
    }

    @Test func catMaxRatioAvoidsCropsDominatedByOneClass() throws {
        // 128×16 mask, 95.3 % class 0 and a 6-column stripe of class 1; 16×16 crops. Only offsets 48…62 give
        // class 1 ≥ 25 % of the crop (15 of 113 offsets), so without the check ~13 % of crops qualify.
        let width = 128, height = 16
        var labels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height { for x in 60..<66 { labels[y * width + x] = 1 } }
        let sample = Sample(image: ImageBuffer(width: width, height: height, fill: 0),
                            mask: LabelMask(width: width, height: height, labels: labels), name: "stripe")
        func qualifyingShare(_ catMaxRatio: Double) throws -> Double {
            var good = 0
            for seed in UInt64(0)..<400 {
                let out = try Self.run([RandomCrop(height: 16, width: 16, catMaxRatio: catMaxRatio)], on: sample, seed: seed)
                let ones = out.mask!.labels.filter { $0 == 1 }.count
                if ones > 0 && Double(max(ones, 256 - ones)) / 256 < 0.75 { good += 1 }
            }
            return Double(good) / 400
        }
        let checked = try qualifyingShare(0.75), unchecked = try qualifyingShare(1)
        #expect(checked > 0.6, "with cat_max_ratio 0.75: \(checked)")
        #expect(unchecked < 0.3, "without the check: \(unchecked)")
    }

    @Test func catMaxRatioChecksTenTimesThenKeepsTheLastBoxAndIgnoresIgnoredPixels() {
        // Left half ignored, right half class 0: only one non-ignored class anywhere, so every check fails —
        // mmseg draws 11 boxes (1 + 10 re-draws) and keeps the last. Counting 255 as a class would accept early.
        let width = 64, height = 20
        var labels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height { for x in 0..<32 { labels[y * width + x] = 255 } }
        let mask = LabelMask(width: width, height: height, labels: labels)
        let crop = RandomCrop(height: 8, width: 16, catMaxRatio: 0.75)
        var rng = RandomGenerator(seed: 9), replay = rng
        let box = crop.chooseBox(imageWidth: width, imageHeight: height, mask: mask, generator: &rng)
        var last = (x: 0, y: 0)
        for _ in 0..<11 { let y = replay.int(below: 13); let x = replay.int(below: 49); last = (x, y) }
        #expect(rng.stateWords == replay.stateWords, "11 boxes drawn")
        #expect(box.x == last.x && box.y == last.y && box.width == 16 && box.height == 8)

        // A mask whose every crop qualifies accepts the first box (one draw).
        var checker = [UInt8](repeating: 0, count: width * height)
        for i in checker.indices { checker[i] = UInt8(i % 2) }
        var rng2 = RandomGenerator(seed: 9), replay2 = rng2
        _ = crop.chooseBox(imageWidth: width, imageHeight: height, mask: LabelMask(width: width, height: height, labels: checker), generator: &rng2)
        _ = replay2.int(below: 13); _ = replay2.int(below: 49)
        #expect(rng2.stateWords == replay2.stateWords, "first box accepted")
    }

    // MARK: - Geometric: flip and pad

    @Test func flipTwiceIsIdentityAndProbabilityIsRespected() throws {
        let sample = Self.blockySample(width: 31, height: 9, block: 4)
        let twice = try Self.run([RandomFlip(probability: 1), RandomFlip(probability: 1)], on: sample, seed: 4)
        #expect(twice.image == sample.image && twice.mask == sample.mask)
        let never = try Self.run([RandomFlip(probability: 0)], on: sample, seed: 4)
        #expect(never.image == sample.image && never.mask == sample.mask)
        // By hand: one row of three RGB pixels and its labels.
        var row = Sample(image: ImageBuffer(width: 3, height: 1, pixels: [1, 2, 3, 4, 5, 6, 7, 8, 9]),
                         mask: LabelMask(width: 3, height: 1, labels: [1, 2, 3]), name: "row")
        var rng = RandomGenerator(seed: 0)
        RandomFlip(probability: 1).apply(&row, generator: &rng)
        #expect(row.image.pixels == [7, 8, 9, 4, 5, 6, 1, 2, 3] && row.mask!.labels == [3, 2, 1])
        // p = 0.5 flips some samples and not others.
        var flips = 0
        for seed in UInt64(0)..<200 {
            if try Self.run([RandomFlip()], on: sample, seed: seed).image != sample.image { flips += 1 }
        }
        #expect((60...140).contains(flips), "\(flips) flips in 200")
    }

    @Test func padByHand() throws {
        let sample = Sample(image: ImageBuffer(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6]),
                            mask: LabelMask(width: 2, height: 1, labels: [7, 8]), name: "tiny")
        let padded = try Self.run([Pad(height: 2, width: 3)], on: sample, seed: 0)
        #expect(padded.image.width == 3 && padded.image.height == 2)
        #expect(padded.image.pixels == [1, 2, 3, 4, 5, 6, 0, 0, 0] + [Float](repeating: 0, count: 9))
        #expect(padded.mask!.labels == [7, 8, 255, 255, 255, 255])
        let custom = try Self.run([Pad(height: 1, width: 3, imageValue: -1, maskValue: 9)], on: sample, seed: 0)
        #expect(custom.image.pixels == [1, 2, 3, 4, 5, 6, -1, -1, -1] && custom.mask!.labels == [7, 8, 9])
        // Pad never crops.
        let big = Self.blockySample(width: 10, height: 10, block: 2)
        let same = try Self.run([Pad(height: 4, width: 4)], on: big, seed: 0)
        #expect(same.image == big.image && same.mask == big.mask)
    }

    // MARK: - Photometric

    @Test func photometricIsIdentityWhenEveryBranchIsOff() {
        let distortion = PhotoMetricDistortion(probability: 0)
        var rng = RandomGenerator(seed: 12)
        for _ in 0..<20 {
            let parameters = distortion.drawParameters(generator: &rng)
            #expect(parameters.brightness == nil && parameters.contrast == nil && parameters.saturation == nil && parameters.hueShift == nil)
        }
        let image = Self.randomImage(width: 17, height: 13, seed: 2)
        var sample = Sample(image: image, mask: nil, name: "noise")
        distortion.apply(&sample, generator: &rng)
        #expect(sample.image == image)
        var copy = image
        PhotoMetricDistortion.apply(.identity, to: &copy)
        #expect(copy == image)
    }

    @Test func photometricKeepsValuesInRangeAndDrawsInsideTheRanges() {
        let always = PhotoMetricDistortion(probability: 1)
        var sawFirst = false, sawLast = false, sawHues = Set<Int>()
        for seed in UInt64(0)..<60 {
            var rng = RandomGenerator(seed: seed)
            let parameters = always.drawParameters(generator: &rng)
            #expect((-32...32).contains(parameters.brightness!))
            #expect((0.5...1.5).contains(parameters.contrast!) && (0.5...1.5).contains(parameters.saturation!))
            #expect((-18...17).contains(parameters.hueShift!))
            sawHues.insert(parameters.hueShift!)
            if parameters.contrastFirst { sawFirst = true } else { sawLast = true }
            var image = Self.randomImage(width: 23, height: 7, seed: seed)
            image.pixels[0] = 255; image.pixels[1] = 255; image.pixels[2] = 255; image.pixels[3] = 0 // extremes
            PhotoMetricDistortion.apply(parameters, to: &image)
            #expect(image.pixels.allSatisfy { $0 >= 0 && $0 <= 255 })
        }
        #expect(sawFirst && sawLast && sawHues.count > 10)
        // The default probability ½ skips some branches and takes others.
        var rng = RandomGenerator(seed: 1), skipped = 0, taken = 0
        for _ in 0..<100 {
            let p = PhotoMetricDistortion().drawParameters(generator: &rng)
            for on in [p.brightness != nil, p.contrast != nil, p.saturation != nil, p.hueShift != nil] { if on { taken += 1 } else { skipped += 1 } }
        }
        #expect((150...250).contains(taken) && taken + skipped == 400, "\(taken) of 400 branches taken")
    }

    @Test func photometricSubStepsByHand() {
        func pixel(_ r: Float, _ g: Float, _ b: Float) -> ImageBuffer { ImageBuffer(width: 1, height: 1, pixels: [r, g, b]) }
        func close(_ a: ImageBuffer, _ b: [Float]) -> Bool { zip(a.pixels, b).allSatisfy { abs($0 - $1) < 1e-3 } }

        var image = pixel(250, 10, 100)
        PhotoMetricDistortion.adjustBrightness(&image, delta: 10)
        #expect(image.pixels == [255, 20, 110])
        PhotoMetricDistortion.adjustBrightness(&image, delta: -30)
        #expect(image.pixels == [225, 0, 80])
        image = pixel(200, 10, 0)
        PhotoMetricDistortion.adjustContrast(&image, factor: 1.5)
        #expect(image.pixels == [255, 15, 0])

        // Saturation 0 ⇒ grey at V; saturation ×2 of S = 0.5 ⇒ S = 1 (min channel 0), hue kept.
        image = pixel(200, 100, 50)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 0, hueShift: 0)
        #expect(close(image, [200, 200, 200]))
        image = pixel(200, 150, 100)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 2, hueShift: 0)
        #expect(close(image, [200, 100, 0]))
        image = pixel(200, 150, 100)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 4, hueShift: 0) // S clipped at 1
        #expect(close(image, [200, 100, 0]))
        // Hue in 2° units: +60 = +120° turns red into green; (200, 100, 50) has H = 20°, +30 units ⇒ 80°.
        image = pixel(255, 0, 0)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 1, hueShift: 60)
        #expect(close(image, [0, 255, 0]))
        image = pixel(200, 100, 50)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 1, hueShift: 30)
        #expect(close(image, [150, 200, 50]))
        image = pixel(200, 100, 50)
        PhotoMetricDistortion.adjustSaturationAndHue(&image, saturation: 1, hueShift: -18) // 20° − 36° wraps to 344°
        #expect(close(image, [200, 50, 90]))

        // The HSV round trip alone is the identity (to float rounding), and 2 × 180° is a full turn.
        let noise = Self.randomImage(width: 19, height: 11, seed: 8)
        var roundTrip = noise
        PhotoMetricDistortion.adjustSaturationAndHue(&roundTrip, saturation: 1, hueShift: 0)
        #expect(zip(roundTrip.pixels, noise.pixels).allSatisfy { abs($0 - $1) < 1e-3 })
        PhotoMetricDistortion.adjustSaturationAndHue(&roundTrip, saturation: 1, hueShift: 90)
        #expect(zip(roundTrip.pixels, noise.pixels).contains { abs($0 - $1) > 1 })
        PhotoMetricDistortion.adjustSaturationAndHue(&roundTrip, saturation: 1, hueShift: 90)
        #expect(zip(roundTrip.pixels, noise.pixels).allSatisfy { abs($0 - $1) < 1e-2 })

        // Contrast position matters: ×2 then S×½ differs from S×½ then ×2.
        var first = pixel(200, 100, 0), last = pixel(200, 100, 0)
        PhotoMetricDistortion.apply(.init(contrast: 2, contrastFirst: true, saturation: 0.5), to: &first)
        PhotoMetricDistortion.apply(.init(contrast: 2, contrastFirst: false, saturation: 0.5), to: &last)
        #expect(close(first, [255, 227.5, 127.5]))
        #expect(close(last, [255, 255, 200]))
    }

    // MARK: - Normalize

    @Test func normalizeByHand() throws {
        let sample = Sample(image: ImageBuffer(width: 2, height: 1, pixels: [123.675 + 58.395, 116.28, 103.53 - 57.375, 0, 0, 0]),
                            mask: nil, name: "n")
        let out = try Self.run([Normalize()], on: sample, seed: 0)
        let expected: [Float] = [1, 0, -1, -123.675 / 58.395, -116.28 / 57.12, -103.53 / 57.375]
        #expect(zip(out.image.pixels, expected).allSatisfy { abs($0 - $1) < 1e-5 }, "\(out.image.pixels)")
        let custom = try Self.run([Normalize(mean: [1, 2, 3], std: [2, 4, 0.5])], on: sample, seed: 0)
        #expect(zip(custom.image.pixels.suffix(3), [-0.5, -0.5, -6] as [Float]).allSatisfy { abs($0 - $1) < 1e-6 })
    }

    // MARK: - Determinism and the full pipeline

    @Test func sameSeedSameOutputDifferentSeedDifferentOutput() throws {
        let config = try PipelineConfig(crop: [48, 64], scale: [160, 64])
        var sample = Self.blockySample(width: 120, height: 90, block: 10)
        sample.image = Self.randomImage(width: 120, height: 90, seed: 4)
        let transforms = config.trainTransforms()
        let a = try Self.run(transforms, on: sample, seed: 42), b = try Self.run(transforms, on: sample, seed: 42)
        #expect(a.image == b.image && a.mask == b.mask)
        let c = try Self.run(transforms, on: sample, seed: 43)
        #expect(a.image != c.image)
        #expect(a.image.width == 64 && a.image.height == 48 && c.mask!.width == 64 && c.mask!.height == 48)
    }

    @Test func trainPipelineOnARealCamVidSample() throws {
        let root = Fixtures.root + "/../data/camvid"
        let rgb = try ImageCodecs.decodeImage(path: root + "/images/train/0001TP_006690.jpg")
        let mask = try ImageCodecs.decodeMask(path: root + "/masks/train/0001TP_006690.png")
        let sample = Sample(image: ImageBuffer(rgb), mask: mask, name: "0001TP_006690")
        let config = PipelineConfig()
        let transforms = config.trainTransforms()
        for seed in UInt64(0)..<4 {
            let out = try Self.run(transforms, on: sample, seed: seed)
            #expect(out.image.width == 512 && out.image.height == 512 && out.image.pixels.count == 512 * 512 * 3)
            #expect(out.mask!.width == 512 && out.mask!.height == 512)
            #expect(out.mask!.labels.allSatisfy { $0 <= 10 || $0 == 255 })
            #expect(out.mask!.labels.contains { $0 != 255 })
            #expect(out.image.pixels.allSatisfy { $0.isFinite && abs($0) < 3 }, "normalised values stay within ±3")
            #expect(out.originalWidth == 480 && out.originalHeight == 360)
        }
        let test = try Self.run(config.testTransforms(), on: sample, seed: 0)
        #expect(test.image.width == 683 && test.image.height == 512 && test.mask == mask)
    }

    // MARK: - PipelineConfig

    @Test func pipelineConfigDecodesWithDefaults() throws {
        let defaults = try JSONDecoder().decode(PipelineConfig.self, from: Data("{}".utf8))
        #expect(defaults == PipelineConfig())
        #expect(defaults.crop == [512, 512] && defaults.scale == [2048, 512] && defaults.ratioRange == [0.5, 2.0])
        #expect(defaults.catMaxRatio == 0.75 && defaults.flip == 0.5 && defaults.photometric && defaults.testScale == nil)
        #expect(defaults.mean == [123.675, 116.28, 103.53] && defaults.std == [58.395, 57.12, 57.375])

        let json = #"{"crop": [256, 320], "ratioRange": null, "flip": 0, "photometric": false, "testScale": [1024, 256]}"#
        let custom = try JSONDecoder().decode(PipelineConfig.self, from: Data(json.utf8))
        #expect(custom.crop == [256, 320] && custom.ratioRange == nil && custom.flip == 0 && !custom.photometric)
        #expect(custom.testScale == [1024, 256] && custom.scale == [2048, 512] && custom.catMaxRatio == 0.75)

        // Encoding keeps an explicit null range, so the round trip does not bring the default back.
        let again = try JSONDecoder().decode(PipelineConfig.self, from: JSONEncoder().encode(custom))
        #expect(again == custom)

        for bad in [#"{"crop": [0, 512]}"#, #"{"scale": [512]}"#, #"{"ratioRange": [2, 1]}"#, #"{"catMaxRatio": 1.5}"#,
                    #"{"flip": -0.1}"#, #"{"std": [1, 0, 1]}"#, #"{"mean": [1, 2]}"#, #"{"testScale": [0, 1]}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(PipelineConfig.self, from: Data(bad.utf8)) }
        }
        #expect(throws: PipelineConfigError.self) { try PipelineConfig(crop: [512]) }
    }

    @Test func pipelineConfigBuildsTheTransformLists() throws {
        func names(_ transforms: [Transform]) -> [String] { transforms.map { String(describing: type(of: $0)) } }
        let config = PipelineConfig()
        #expect(names(config.trainTransforms()) == ["RandomResize", "RandomCrop", "RandomFlip", "PhotoMetricDistortion", "Normalize", "Pad"])
        #expect(names(config.testTransforms()) == ["Resize", "Normalize"])
        let plain = try PipelineConfig(crop: [256, 320], ratioRange: nil, catMaxRatio: 1, flip: 0.25, photometric: false, testScale: [1024, 256])
        let train = plain.trainTransforms()
        #expect(names(train) == ["RandomResize", "RandomCrop", "RandomFlip", "Normalize", "Pad"])
        let resize = try #require(train[0] as? RandomResize), crop = try #require(train[1] as? RandomCrop)
        #expect(resize.scale == (2048, 512) && resize.ratioRange == nil && resize.keepRatio)
        #expect(crop.height == 256 && crop.width == 320 && crop.catMaxRatio == 1)
        #expect((train[2] as? RandomFlip)?.probability == 0.25)
        #expect((train[4] as? Pad).map { $0.height == 256 && $0.width == 320 && $0.imageValue == 0 && $0.maskValue == 255 } == true)
        let test = plain.testTransforms()
        #expect((test[0] as? Resize).map { $0.scale == (1024, 256) && $0.keepRatio && !$0.resizeMask } == true)
        #expect((test[1] as? Normalize)?.mean == [123.675, 116.28, 103.53])
    }
}
