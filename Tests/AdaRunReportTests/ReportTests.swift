// Report outputs: the curve plot (layout, ink where the data says, robustness), the bitmap font, and the
// prediction files (palette mask, overlay, probabilities).
// Set ADAROUTE_PLOT_PREVIEW_DIR to keep preview PNGs of the plots for a look.
import AdaData
import AdaIO
import AdaRun
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// Pixels of `image` in a rectangle that satisfy `test`.
private func count(_ image: RGBImage, x: Range<Int>, y: Range<Int>, where test: (UInt8, UInt8, UInt8) -> Bool) -> Int {
    var n = 0
    for row in y { for column in x {
        let i = (row * image.width + column) * 3
        if test(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2]) { n += 1 }
    } }
    return n
}

private func isBlueInk(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Bool { Int(b) > Int(r) + 25 }
private func isOrangeInk(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Bool { Int(r) > Int(b) + 60 }
private func isNotWhite(_ r: UInt8, _ g: UInt8, _ b: UInt8) -> Bool { r < 250 || g < 250 || b < 250 }

private func preview(_ name: String, _ image: RGBImage) throws {
    guard let dir = ProcessInfo.processInfo.environment["ADAROUTE_PLOT_PREVIEW_DIR"], !dir.isEmpty else { return }
    let png = try ImageCodecs.encodePNG(pixels: image.pixels, width: image.width, height: image.height, kind: .rgb)
    try AtomicFile.write(png, to: URL(fileURLWithPath: dir).appendingPathComponent(name))
}

/// A noisy, decaying loss logged every iteration and an mIoU rising with each validation.
private func syntheticHistory(iterations: Int = 2000, every: Int = 250)
    -> (loss: [(iteration: Int, value: Double)], validation: [(iteration: Int, mIoU: Double)]) {
    var state: UInt64 = 12345
    func noise() -> Double { // deterministic, in [-1, 1)
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return Double(state >> 11) / Double(1 << 53) * 2 - 1
    }
    let loss = (1...iterations).map { i in (iteration: i, value: 0.25 + 2.0 * exp(-Double(i) / 400) + 0.12 * noise()) }
    let validation = stride(from: every, through: iterations, by: every).map { i in
        (iteration: i, mIoU: 70 * (1 - exp(-Double(i) / 600)) + 2 * noise())
    }
    return (loss, validation)
}

@Suite("Curve plot")
struct CurvePlotTests {
    @Test func trainingCurvesHaveTheSizeAndInkInsideThePanels() throws {
        let history = syntheticHistory()
        let panels = CurvePlot.trainingPanels(loss: history.loss, validation: history.validation)
        let image = CurvePlot.render(panels: panels)
        try preview("curves.png", image)
        #expect(image.width == 960 && image.height == 400 && image.pixels.count == 960 * 400 * 3)
        // The corners stay background; the loss is drawn in the left panel, the mIoU in the right one.
        #expect(count(image, x: 0..<4, y: 0..<4, where: isNotWhite) == 0)
        #expect(count(image, x: 0..<480, y: 40..<340, where: isBlueInk) > 1500)
        #expect(count(image, x: 480..<960, y: 0..<400, where: isBlueInk) == 0)
        #expect(count(image, x: 480..<960, y: 40..<340, where: isOrangeInk) > 200)
        #expect(count(image, x: 0..<480, y: 0..<400, where: isOrangeInk) == 0)
    }

    @Test func curvesLieWhereTheDataSays() throws {
        let history = syntheticHistory()
        let image = CurvePlot.render(panels: CurvePlot.trainingPanels(loss: history.loss, validation: history.validation))
        // The decaying loss inks the upper left of its panel more than the upper right, the lower right more than the upper right.
        let upperLeft = count(image, x: 60..<270, y: 40..<200, where: isBlueInk)
        let upperRight = count(image, x: 270..<480, y: 40..<200, where: isBlueInk)
        let lowerRight = count(image, x: 270..<480, y: 200..<340, where: isBlueInk)
        #expect(upperLeft > 4 * max(upperRight, 1), "upper left \(upperLeft), upper right \(upperRight)")
        #expect(lowerRight > 4 * max(upperRight, 1), "lower right \(lowerRight), upper right \(upperRight)")
        // The rising mIoU: its ink sits lower on the left of the panel than on the right.
        func meanRow(_ columns: Range<Int>) -> Double {
            var sum = 0, n = 0
            for row in 40..<360 { let k = count(image, x: columns, y: row..<(row + 1), where: isOrangeInk); sum += k * row; n += k }
            return n == 0 ? .nan : Double(sum) / Double(n)
        }
        let early = meanRow(540..<640), late = meanRow(860..<950)
        #expect(early > late + 100, "mean ink row \(early) early, \(late) late")

        // A step from 0 to 1 half-way: ink only low on the left and only high on the right.
        let step = CurvePlot.Series(name: "", x: (0...100).map(Double.init), y: (0...100).map { $0 < 50 ? 0 : 1 })
        let stepImage = CurvePlot.render(series: [step], title: "step", width: 400, height: 400)
        try preview("step.png", stepImage)
        let rows = (0..<400).filter { row in count(stepImage, x: 100..<180, y: row..<(row + 1), where: isBlueInk) > 0 }
        let rightRows = (0..<400).filter { row in count(stepImage, x: 300..<380, y: row..<(row + 1), where: isBlueInk) > 0 }
        #expect(!rows.isEmpty && !rightRows.isEmpty)
        #expect((rows.max() ?? 0) - (rows.min() ?? 0) <= 3, "left line spans rows \(rows)") // a thin horizontal line
        #expect((rightRows.max() ?? 0) < (rows.min() ?? 0) - 100, "right rows \(rightRows), left rows \(rows)")
    }

    @Test func longRunRendersEveryPoint() throws {
        // 80k iterations logged every iteration, with heavy noise and one spike, validation every 4k.
        let history = syntheticHistory(iterations: 80_000, every: 4_000)
        var loss = history.loss.map { (iteration: $0.iteration * 1, value: 0.3 + ($0.value - 0.3) * 1.0) }
        loss[5_000].value = 9
        let start = Date()
        let image = CurvePlot.render(panels: CurvePlot.trainingPanels(loss: loss, validation: history.validation))
        let seconds = Date().timeIntervalSince(start)
        try preview("curves_long.png", image)
        print("rendered 80k loss points in \(String(format: "%.3f", seconds)) s")
        #expect(count(image, x: 0..<480, y: 40..<360, where: isBlueInk) > 3000)
        #expect(count(image, x: 470..<480, y: 0..<400, where: isBlueInk) == 0) // nothing past the frame
    }

    @Test func fixedRangesClipAtTheFrame() throws {
        // A spike far above a fixed y range: no ink above the frame (the title band stays clean).
        let spiky = CurvePlot.Series(name: "", x: (0..<50).map(Double.init), y: (0..<50).map { $0 == 25 ? 9 : 0.5 })
        let panel = CurvePlot.Panel(title: "", series: [spiky], xRange: 10...40, yRange: 0...1)
        let image = CurvePlot.render(panels: [panel], width: 400, height: 300)
        try preview("clipped.png", image)
        let inkRows = (0..<300).filter { count(image, x: 0..<400, y: $0..<($0 + 1), where: isBlueInk) > 0 }
        let frameTop = (0..<300).first { count(image, x: 0..<400, y: $0..<($0 + 1), where: { r, g, b in r == 90 && g == 90 && b == 90 }) > 200 }
        #expect(frameTop != nil && inkRows.min()! > frameTop!, "ink rows from \(inkRows.min() ?? -1), frame at \(frameTop ?? -1)")
        // The spike still reaches the top: ink right under the frame.
        #expect(inkRows.min()! <= frameTop! + 2)
    }

    @Test func degenerateInputsDrawWithoutCrashing() throws {
        let nan = Double.nan, inf = Double.infinity
        let cases: [(String, [CurvePlot.Series])] = [
            ("empty", []),
            ("empty series", [CurvePlot.Series(name: "a", x: [], y: [])]),
            ("all nan", [CurvePlot.Series(name: "a", x: [1, 2, 3], y: [nan, inf, -inf])]),
            ("one point", [CurvePlot.Series(name: "a", x: [7], y: [0.5])]),
            ("constant", [CurvePlot.Series(name: "a", x: [1, 2, 3, 4], y: [2, 2, 2, 2])]),
            ("constant zero", [CurvePlot.Series(name: "a", x: [5, 5], y: [0, 0], style: .markers)]),
            ("some nan", [CurvePlot.Series(name: "a", x: [1, 2, nan, 4, 5], y: [1, nan, 3, inf, 0.5])]),
            ("huge", [CurvePlot.Series(name: "a", x: [0, 1, 2], y: [-1e308, 1e308, 0])]),
            ("tiny", [CurvePlot.Series(name: "a", x: [0, 1e-9], y: [1e-300, 2e-300])]),
            ("large offset", [CurvePlot.Series(name: "a", x: [1e12, 1e12 + 1], y: [1e9, 1e9 + 1e-3])]),
        ]
        for (name, series) in cases {
            for (width, height) in [(960, 400), (120, 90), (12, 9), (1, 1)] {
                let image = CurvePlot.render(series: series, title: name, width: width, height: height)
                #expect(image.width == width && image.height == height, "\(name)")
            }
        }
        // Empty data: axes and the "no data" note (grey text in the middle), no curve ink.
        let empty = CurvePlot.render(series: [CurvePlot.Series(name: "a", x: [1], y: [nan])], title: "empty")
        try preview("empty.png", empty)
        #expect(count(empty, x: 380..<580, y: 160..<240, where: { r, g, b in r == g && g == b && r > 100 && r < 160 }) > 30)
        #expect(count(empty, x: 0..<960, y: 0..<400, where: isBlueInk) == 0)
        // One point still shows as a dot.
        let one = CurvePlot.render(series: [CurvePlot.Series(name: "a", x: [7], y: [0.5])], title: "one point")
        #expect(count(one, x: 0..<960, y: 40..<360, where: isBlueInk) >= 12)
        // Training panels with no history at all, and with a single logged step.
        _ = CurvePlot.render(panels: CurvePlot.trainingPanels(loss: [], validation: []))
        let single = CurvePlot.render(panels: CurvePlot.trainingPanels(loss: [(1, 2.5)], validation: [(1, nan)]))
        #expect(count(single, x: 0..<480, y: 40..<360, where: isBlueInk) >= 12)
    }

    @Test func niceTicksAndLabels() {
        #expect(CurvePlot.Axis.niceStep(0.37) == 0.5)
        #expect(CurvePlot.Axis.niceStep(3) == 5)
        #expect(CurvePlot.Axis.niceStep(7) == 10)
        #expect(CurvePlot.Axis.niceStep(1) == 1)
        #expect(abs(CurvePlot.Axis.niceStep(0.0012) - 0.002) < 1e-15)
        let loss = CurvePlot.Axis(lower: 0.2, upper: 2.3, targetTicks: 5, snap: true)
        #expect(loss.lower == 0 && loss.upper == 2.5 && loss.step == 0.5)
        #expect(loss.ticks.map { loss.label($0) } == ["0.0", "0.5", "1.0", "1.5", "2.0", "2.5"])
        let iterations = CurvePlot.Axis(lower: 0, upper: 2000, targetTicks: 4, snap: false)
        #expect(iterations.ticks == [0, 500, 1000, 1500, 2000] && iterations.label(1500) == "1500")
        // A constant value gets a range around it; negative values keep their sign in the labels.
        let constant = CurvePlot.Axis(lower: 2, upper: 2, targetTicks: 4, snap: true)
        #expect(constant.lower < 2 && constant.upper > 2 && constant.ticks.count >= 2)
        let negative = CurvePlot.Axis(lower: -3, upper: -1, targetTicks: 4, snap: true)
        #expect(negative.lower == -3 && negative.upper == -1 && negative.step == 0.5 && negative.label(-2) == "-2.0")
        let broken = CurvePlot.Axis(lower: .nan, upper: .infinity, targetTicks: 4, snap: true)
        #expect(broken.lower < broken.upper && !broken.ticks.isEmpty)
    }

    @Test func exponentialMovingAverageIsDebiasedAndSkipsNaN() {
        let smoothed = CurvePlot.exponentialMovingAverage([1, .nan, 3], smoothing: 0.5)
        #expect(smoothed[0] == 1 && smoothed[1].isNaN && abs(smoothed[2] - 1.75 / 0.75) < 1e-12)
        #expect(CurvePlot.exponentialMovingAverage([4, 4, 4], smoothing: 0.9).allSatisfy { abs($0 - 4) < 1e-12 })
    }

    @Test func centredMovingAverageKeepsTrendsAndAveragesTheInterior() {
        // Interior: the plain mean of the window.
        let values: [Double] = [5, 1, 4, 1, 5, 9, 2, 6]
        let smoothed = CurvePlot.centredMovingAverage(values, halfWindow: 2)
        #expect(abs(smoothed[3] - (1 + 4 + 1 + 5 + 9) / 5.0) < 1e-12 && abs(smoothed[2] - (5 + 1 + 4 + 1 + 5) / 5.0) < 1e-12)
        // A straight line comes back unchanged, ends included (no lag, no hook).
        let line = (0..<40).map { 3 - 0.05 * Double($0) }
        let kept = CurvePlot.centredMovingAverage(line, halfWindow: 6)
        #expect(zip(line, kept).allSatisfy { abs($0 - $1) < 1e-9 }, "\(kept)")
        // NaN stays NaN and is left out of its neighbours' windows; half-window 0 is the identity.
        let gappy = CurvePlot.centredMovingAverage([1, 2, .nan, 4, 5], halfWindow: 1)
        #expect(gappy[2].isNaN && abs(gappy[1] - 2) < 1e-12 && abs(gappy[3] - 4) < 1e-12)
        #expect(CurvePlot.centredMovingAverage(values, halfWindow: 0) == values)
        #expect(CurvePlot.centredMovingAverage([], halfWindow: 3).isEmpty)
    }

    @Test func writesAPNGAndNamesTheFileOnFailure() throws {
        let dir = Fixtures.temporaryDirectory()
        let history = syntheticHistory(iterations: 300, every: 100)
        let path = dir.appendingPathComponent("run/curves.png").path
        try CurvePlot.writePNG(path: path, panels: CurvePlot.trainingPanels(loss: history.loss, validation: history.validation))
        let decoded = try ImageCodecs.decodeImage(path: path)
        #expect(decoded.width == 960 && decoded.height == 400)
        // A stacked layout for a tall image.
        let tall = CurvePlot.render(panels: CurvePlot.trainingPanels(loss: history.loss, validation: history.validation), width: 500, height: 700)
        try preview("curves_stacked.png", tall)
        #expect(count(tall, x: 0..<500, y: 0..<350, where: isBlueInk) > 0 && count(tall, x: 0..<500, y: 350..<700, where: isOrangeInk) > 0)
        // A folder where a file is: the error names the target.
        let blocker = dir.appendingPathComponent("blocker").path
        try Data([1]).write(to: URL(fileURLWithPath: blocker))
        let bad = blocker + "/curves.png"
        do {
            try CurvePlot.writePNG(path: bad, panels: [])
            Issue.record("writing under a file should fail")
        } catch { #expect("\(error)".contains(bad), "\(error)") }
    }
}

@Suite("Bitmap font")
struct BitmapFontTests {
    @Test func glyphsDrawTheirBits() {
        var inked = 0
        BitmapFont.forEachInkPixel(in: "A") { _, _ in inked += 1 }
        #expect(inked == BitmapFont.glyph("A").nonzeroBitCount)
        var scaled: [(Int, Int)] = []
        BitmapFont.forEachInkPixel(in: "1", scale: 2) { scaled.append(($0, $1)) }
        #expect(scaled.count == 4 * BitmapFont.glyph("1").nonzeroBitCount)
        #expect(scaled.allSatisfy { $0.0 >= 0 && $0.0 < 10 && $0.1 >= 0 && $0.1 < 16 })
        // The second character starts one advance to the right.
        var xs: [Int] = []
        BitmapFont.forEachInkPixel(in: " .") { x, _ in xs.append(x) }
        #expect(!xs.isEmpty && xs.allSatisfy { $0 >= BitmapFont.advance })
        #expect(BitmapFont.width(of: "abc") == 17 && BitmapFont.width(of: "") == 0 && BitmapFont.width(of: "ab", scale: 2) == 22)
    }

    @Test func everyGlyphStaysInItsCellAndDigitsAndLettersDiffer() {
        let characters = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.,:;-+=%/\\_()[]<>!?@#*&'\"|^~$")
        var seen: [UInt64: Character] = [:]
        for c in characters {
            #expect(BitmapFont.hasGlyph(c), "\(c)")
            let bits = BitmapFont.glyph(c)
            #expect(bits & ~0x1F1F_1F1F_1F1F_1F1F == 0, "\(c) has ink outside its 5 columns")
            #expect(bits != 0, "\(c) is blank")
            #expect(seen[bits] == nil, "\(c) looks like \(seen[bits] ?? " ")")
            seen[bits] = c
        }
        // Descenders only on the letters that have them.
        for c in characters where BitmapFont.glyph(c) & 0xFF != 0 { #expect("gjpqy,".contains(c), "\(c) reaches the descender row") }
    }

    @Test func textDrawsInkAndUnknownCharactersDoNotCrash() {
        var canvas = PlotCanvas(width: 80, height: 20)
        canvas.drawText("val mIoU 72.5%", x: 1, y: 1)
        let dark = stride(from: 0, to: canvas.pixels.count, by: 3).filter { canvas.pixels[$0] < 128 }.count
        #expect(dark > 50)
        var box = 0
        BitmapFont.forEachInkPixel(in: "€\u{0}😀") { _, _ in box += 1 }
        #expect(box == 3 * BitmapFont.missingGlyph.nonzeroBitCount)
        canvas.drawText("clipped €", x: 70, y: 15, scale: 3)
        canvas.drawText("up", x: -5, y: 200, rotated: true)
        #expect(canvas.pixels.count == 80 * 20 * 3)
    }
}

@Suite("Prediction writer")
struct PredictionWriterTests {
    let palette = [[10, 20, 30], [200, 0, 0], [0, 0, 250]]

    @Test func paletteMaskRoundTripsToIndicesAndColours() throws {
        let dir = Fixtures.temporaryDirectory().appendingPathComponent("nested/out").path
        let writer = PredictionWriter(outputDirectory: dir, palette: palette)
        let indices: [UInt8] = [0, 1, 2, 1, 0, 2]
        let written = try writer.write(stem: "img_001", prediction: indices, width: 3, height: 2)
        #expect(written.mask == dir + "/img_001.png" && written.overlay == nil && written.probabilities == nil)
        #expect(try ImageCodecs.decodeMask(path: written.mask) == LabelMask(width: 3, height: 2, labels: indices))
        let colours = try ImageCodecs.decodeImage(path: written.mask).pixels
        #expect(colours == indices.flatMap { palette[Int($0)].map(UInt8.init) })
        // No temporary files left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["img_001.png"])
    }

    @Test func indicesBeyondThePaletteGetPaddedColours() throws {
        let dir = Fixtures.temporaryDirectory().path
        let writer = PredictionWriter(outputDirectory: dir, palette: palette)
        let int32: [Int32] = [0, 5, 255, 2]
        let written = try writer.write(stem: "wide", prediction: int32, width: 2, height: 2)
        #expect(try ImageCodecs.decodeMask(path: written.mask).labels == [0, 5, 255, 2])
        let colours = try ImageCodecs.decodeImage(path: written.mask).pixels
        let voc = DatasetConfig.defaultPalette(count: 256)
        #expect(Array(colours[3..<6]) == voc[5].map(UInt8.init))
        #expect(Array(colours[6..<9]) == [224, 224, 192]) // VOC's colour for 255 (ignore)
        #expect(PredictionWriter.colorTable(palette: palette, covering: 1).count == 3)
        #expect(PredictionWriter.colorTable(palette: [[300, -4, 7]], covering: 0).first! == (255, 0, 7))
        // Indices that do not fit 8 bits: an error naming the mask file.
        do {
            try writer.write(stem: "bad", prediction: [0, 256] as [Int32], width: 2, height: 1)
            Issue.record("index 256 should be rejected")
        } catch { #expect("\(error)".contains(dir + "/bad.png") && "\(error)".contains("256"), "\(error)") }
        do {
            try writer.write(stem: "short", prediction: [0, 1, 2] as [UInt8], width: 2, height: 2)
            Issue.record("3 values for 2×2 should be rejected")
        } catch { #expect("\(error)".contains(dir + "/short.png"), "\(error)") }
    }

    @Test func overlayBlendsImageAndClassColour() throws {
        let dir = Fixtures.temporaryDirectory().path
        let image = RGBImage(width: 2, height: 1, pixels: [100, 50, 200, 0, 255, 9])
        let prediction: [UInt8] = [1, 0]
        let written = try PredictionWriter(outputDirectory: dir, palette: palette).write(stem: "o", prediction: prediction, width: 2, height: 1, image: image)
        let overlay = try ImageCodecs.decodeImage(path: #require(written.overlay))
        #expect(written.overlay == dir + "/o_overlay.png")
        // (1 − 0.5)·(100, 50, 200) + 0.5·(200, 0, 0) = (150, 25, 100); (0, 255, 9) with (10, 20, 30) → (5, 137.5→138, 19.5→20).
        #expect(overlay.pixels == [150, 25, 100, 5, 138, 20])
        let quarter = PredictionWriter.overlay(image: image, prediction: prediction,
                                               colors: PredictionWriter.colorTable(palette: palette, covering: 1), alpha: 0.25)
        #expect(Array(quarter.pixels[0..<3]) == [125, 38, 150]) // 0.75·100 + 0.25·200, 37.5 → 38, 150
        // A differently sized image: the error names the overlay file.
        do {
            try PredictionWriter(outputDirectory: dir, palette: palette).write(
                stem: "m", prediction: [0, 0, 0] as [UInt8], width: 3, height: 1, image: image)
            Issue.record("size mismatch should be rejected")
        } catch { #expect("\(error)".contains(dir + "/m_overlay.png"), "\(error)") }
    }

    @Test func probabilitiesReadBackWithShapeValuesAndClassNames() throws {
        let dir = Fixtures.temporaryDirectory().path
        let (k, h, w) = (3, 2, 5)
        let values = (0..<(k * h * w)).map { Float($0) * 0.01 }
        let writer = PredictionWriter(outputDirectory: dir, palette: palette, classNames: ["sky", "road", "car \"x\""])
        let prediction = [UInt8](repeating: 2, count: h * w)
        for shape in [[1, k, h, w], [k, h, w]] {
            let written = try writer.write(stem: "p", prediction: prediction, width: w, height: h,
                                           probabilities: Tensor(shape: shape, values: values))
            let file = try SafeTensorsFile(path: #require(written.probabilities))
            #expect(file.names == ["probabilities"] && file.entry("probabilities")?.shape == [k, h, w])
            #expect(try file.tensor("probabilities").values == values)
            let names = try JSONSerialization.jsonObject(with: Data(#require(file.metadata["classes"]).utf8)) as? [String]
            #expect(names == ["sky", "road", "car \"x\""])
        }
        let probsFile = dir + "/p_probs.safetensors"
        for (shape, names) in [([2, k, h, w], writer.classNames), ([k, w, h], writer.classNames), ([k, h, w], ["a", "b"])] {
            do {
                try PredictionWriter(outputDirectory: dir, palette: palette, classNames: names).write(
                    stem: "p", prediction: prediction, width: w, height: h, probabilities: Tensor(shape: shape, values: [Float](repeating: 0, count: shape.reduce(1, *))))
                Issue.record("shape \(shape) with \(names.count) names should be rejected")
            } catch { #expect("\(error)".contains(probsFile), "\(error)") }
        }
        // Without class names there is no metadata.
        let plain = try PredictionWriter(outputDirectory: dir, palette: palette).write(
            stem: "q", prediction: prediction, width: w, height: h, probabilities: Tensor(shape: [k, h, w], values: values))
        #expect(try SafeTensorsFile(path: #require(plain.probabilities)).metadata.isEmpty)
    }

    @Test func realCamVidMaskWritesAndReadsBack() throws {
        // A real CamVid label map (classes 0…10 and 255 = ignore) written as if it were a prediction.
        let root = Fixtures.root + "/../data/camvid"
        let image = try ImageCodecs.decodeImage(path: root + "/images/train/0001TP_006690.jpg")
        let mask = try ImageCodecs.decodeMask(path: root + "/masks/train/0001TP_006690.png")
        let palette = DatasetConfig.defaultPalette(count: 11)
        let dir = ProcessInfo.processInfo.environment["ADAROUTE_PLOT_PREVIEW_DIR"].map { $0 + "/predictions" }
            ?? Fixtures.temporaryDirectory().path
        let written = try PredictionWriter(outputDirectory: dir, palette: palette).write(stem: "0001TP_006690", prediction: mask, image: image)
        #expect(try ImageCodecs.decodeMask(path: written.mask) == mask)
        let overlay = try ImageCodecs.decodeImage(path: #require(written.overlay))
        #expect(overlay.width == 480 && overlay.height == 360)
        let i = mask.labels.firstIndex { $0 < 11 }!
        let expected = (0..<3).map { c in UInt8((0.5 * Double(image.pixels[i * 3 + c]) + 0.5 * Double(palette[Int(mask.labels[i])][c])).rounded()) }
        #expect(Array(overlay.pixels[(i * 3)..<(i * 3 + 3)]).enumerated().allSatisfy { abs(Int($0.element) - Int(expected[$0.offset])) <= 1 })
    }

    @Test func outputFolderThatIsAFileIsNamed() throws {
        let dir = Fixtures.temporaryDirectory()
        let file = dir.appendingPathComponent("not-a-folder").path
        try Data([0]).write(to: URL(fileURLWithPath: file))
        do {
            try PredictionWriter(outputDirectory: file, palette: [[0, 0, 0]]).write(stem: "x", prediction: [0] as [UInt8], width: 1, height: 1)
            Issue.record("writing into a file should fail")
        } catch { #expect("\(error)".contains(file), "\(error)") }
    }
}
