// Training curves drawn by us (no plotting library, no Foundation drawing APIs): panels of line/marker
// series on an RGB canvas, written as a PNG (curves.png: training loss, raw + smoothed, beside validation mIoU).
//
// Shapes: a canvas is H × W × 3 bytes (RGB, rows top to bottom); a series is N points (x[i], y[i]).
// Canvas coordinates: x to the right, y down, pixel (i, j) covers [i, i+1) × [j, j+1) with its centre at
// (i + 0.5, j + 0.5). Lines are anti-aliased by distance to the segment: each series first collects a
// coverage mask (the maximum over its segments and markers, so joints are not darkened twice), which is
// then blended onto the canvas once with the series colour and opacity. Non-finite points are skipped.
import AdaData
import AdaIO
import Foundation

public struct PlotColor: Equatable, Sendable {
    public var red: UInt8, green: UInt8, blue: UInt8
    public init(_ red: UInt8, _ green: UInt8, _ blue: UInt8) { (self.red, self.green, self.blue) = (red, green, blue) }

    public static let white = PlotColor(255, 255, 255)
    public static let text = PlotColor(34, 34, 34)
    public static let mutedText = PlotColor(120, 120, 120)
    public static let frame = PlotColor(90, 90, 90)
    public static let grid = PlotColor(232, 232, 232)
    public static let blue = PlotColor(31, 119, 180)
    public static let orange = PlotColor(230, 115, 0)
}

/// An RGB drawing surface (H × W × 3 bytes, rows top to bottom).
public struct PlotCanvas {
    public let width: Int
    public let height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, background: PlotColor = .white) {
        precondition(width >= 1 && height >= 1, "PlotCanvas: size \(width)×\(height) must be at least 1×1")
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height * 3)
        fill(x: 0, y: 0, width: width, height: height, color: background)
    }

    public var image: RGBImage { RGBImage(width: width, height: height, pixels: pixels) }

    public func color(x: Int, y: Int) -> PlotColor {
        let i = (y * width + x) * 3
        return PlotColor(pixels[i], pixels[i + 1], pixels[i + 2])
    }

    /// Mixes `color` into one pixel with weight `alpha` (0…1); pixels outside the canvas are ignored.
    public mutating func blend(x: Int, y: Int, color: PlotColor, alpha: Double = 1) {
        guard x >= 0, y >= 0, x < width, y < height, alpha > 0 else { return }
        let a = min(alpha, 1), i = (y * width + x) * 3
        func mix(_ old: UInt8, _ new: UInt8) -> UInt8 { UInt8((Double(old) * (1 - a) + Double(new) * a).rounded()) }
        pixels[i] = mix(pixels[i], color.red)
        pixels[i + 1] = mix(pixels[i + 1], color.green)
        pixels[i + 2] = mix(pixels[i + 2], color.blue)
    }

    /// Fills a rectangle, clipped to the canvas.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, color: PlotColor) {
        let x0 = max(x, 0), y0 = max(y, 0), x1 = min(x + w, width), y1 = min(y + h, height)
        guard x0 < x1, y0 < y1 else { return }
        pixels.withUnsafeMutableBufferPointer { p in
            for row in y0..<y1 {
                for column in x0..<x1 {
                    let i = (row * width + column) * 3
                    p[i] = color.red; p[i + 1] = color.green; p[i + 2] = color.blue
                }
            }
        }
    }

    /// Draws `text` with the built-in bitmap font, its top-left cell corner at (x, y). `rotated` turns it a
    /// quarter turn counter-clockwise (reading upwards), with (x, y) then the bottom-left corner.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: PlotColor = .text, scale: Int = 1, rotated: Bool = false) {
        BitmapFont.forEachInkPixel(in: text, scale: scale) { gx, gy in
            if rotated { blend(x: x + gy, y: y - gx, color: color) } else { blend(x: x + gx, y: y + gy, color: color) }
        }
    }
}

/// Anti-aliased coverage (0…1) over a rectangle of the canvas, combined by maximum.
struct CoverageMask {
    let originX: Int, originY: Int, width: Int, height: Int
    var values: [Float]

    init(x: Int, y: Int, width: Int, height: Int) {
        (originX, originY, self.width, self.height) = (x, y, max(width, 0), max(height, 0))
        values = [Float](repeating: 0, count: self.width * self.height)
    }

    /// A segment of half-width `halfWidth` from a to b (canvas coordinates, continuous).
    mutating func addSegment(_ ax: Double, _ ay: Double, _ bx: Double, _ by: Double, halfWidth: Double) {
        let reach = halfWidth + 0.5
        let dx = bx - ax, dy = by - ay, lengthSquared = dx * dx + dy * dy
        let inverse = lengthSquared > 1e-12 ? 1 / lengthSquared : 0
        visit(minX: min(ax, bx) - reach, maxX: max(ax, bx) + reach, minY: min(ay, by) - reach, maxY: max(ay, by) + reach) { px, py in
            // Distance from the pixel centre to the closest point of the segment.
            let t = min(max(((px - ax) * dx + (py - ay) * dy) * inverse, 0), 1)
            let ex = px - (ax + t * dx), ey = py - (ay + t * dy)
            return reach - (ex * ex + ey * ey).squareRoot()
        }
    }

    mutating func addDisc(_ cx: Double, _ cy: Double, radius: Double) {
        let reach = radius + 0.5
        visit(minX: cx - reach, maxX: cx + reach, minY: cy - reach, maxY: cy + reach) { px, py in
            let ex = px - cx, ey = py - cy
            return reach - (ex * ex + ey * ey).squareRoot()
        }
    }

    /// Runs `coverage(pixel centre)` over the pixels of a box, keeping the maximum (clamped to 0…1).
    private mutating func visit(minX: Double, maxX: Double, minY: Double, maxY: Double, _ coverage: (Double, Double) -> Double) {
        guard minX.isFinite, maxX.isFinite, minY.isFinite, maxY.isFinite else { return }
        let x0 = max(Int(max(minX.rounded(.down), -1e9)), originX), x1 = min(Int(min(maxX.rounded(.up), 1e9)), originX + width - 1)
        let y0 = max(Int(max(minY.rounded(.down), -1e9)), originY), y1 = min(Int(min(maxY.rounded(.up), 1e9)), originY + height - 1)
        guard x0 <= x1, y0 <= y1 else { return }
        values.withUnsafeMutableBufferPointer { v in
            for y in y0...y1 {
                let row = (y - originY) * width - originX
                for x in x0...x1 {
                    let c = Float(min(max(coverage(Double(x) + 0.5, Double(y) + 0.5), 0), 1))
                    if c > v[row + x] { v[row + x] = c }
                }
            }
        }
    }

    func composite(onto canvas: inout PlotCanvas, color: PlotColor, opacity: Double) {
        for y in 0..<height {
            for x in 0..<width where values[y * width + x] > 0 {
                canvas.blend(x: originX + x, y: originY + y, color: color, alpha: Double(values[y * width + x]) * opacity)
            }
        }
    }
}

public enum CurvePlot {
    /// One curve: points (x[i], y[i]); points with a non-finite coordinate are left out.
    public struct Series {
        public enum Style: Sendable { case line, markers, lineAndMarkers }
        /// Legend text (empty: no legend entry).
        public var name: String
        public var x: [Double]
        public var y: [Double]
        public var color: PlotColor
        public var style: Style
        public var lineWidth: Double
        public var markerRadius: Double
        /// 0…1; a light raw curve under a smoothed one uses about 0.3.
        public var opacity: Double

        public init(name: String, x: [Double], y: [Double], color: PlotColor = .blue, style: Style = .line,
                    lineWidth: Double = 1.5, markerRadius: Double = 3, opacity: Double = 1) {
            precondition(x.count == y.count, "CurvePlot.Series '\(name)': \(x.count) x values for \(y.count) y values")
            (self.name, self.x, self.y, self.color, self.style) = (name, x, y, color, style)
            (self.lineWidth, self.markerRadius, self.opacity) = (lineWidth, markerRadius, opacity)
        }

        /// The finite points, in order.
        var finitePoints: [(x: Double, y: Double)] { zip(x, y).filter { $0.0.isFinite && $0.1.isFinite }.map { ($0.0, $0.1) } }
    }

    public struct Panel {
        public var title: String
        public var xLabel: String
        public var yLabel: String
        public var series: [Series]
        /// A fixed x range (e.g. shared by panels over the same iterations); nil = from the data.
        public var xRange: ClosedRange<Double>?
        /// A fixed y range (data outside it is clipped at the frame); nil = from the data, out to nice ticks.
        public var yRange: ClosedRange<Double>?
        /// Shown in the plot area when no series has a finite point.
        public var emptyNote: String

        public init(title: String, xLabel: String = "iteration", yLabel: String = "", series: [Series],
                    xRange: ClosedRange<Double>? = nil, yRange: ClosedRange<Double>? = nil, emptyNote: String = "no data") {
            (self.title, self.xLabel, self.yLabel, self.series) = (title, xLabel, yLabel, series)
            (self.xRange, self.yRange, self.emptyNote) = (xRange, yRange, emptyNote)
        }
    }

    public enum Layout: Sendable { case automatic, sideBySide, stacked }

    /// A numeric axis: the range it shows and where its ticks go.
    public struct Axis: Equatable, Sendable {
        public var lower: Double
        public var upper: Double
        public var ticks: [Double]
        public var step: Double

        /// A tick step of 1, 2 or 5 × 10^k, at least `rough`.
        public static func niceStep(_ rough: Double) -> Double {
            guard rough.isFinite, rough > 0 else { return 1 }
            let magnitude = Foundation.pow(10, (Foundation.log10(rough)).rounded(.down))
            let fraction = rough / magnitude
            let nice: Double = fraction <= 1.000001 ? 1 : fraction <= 2.000001 ? 2 : fraction <= 5.000001 ? 5 : 10
            return nice * magnitude
        }

        /// Ticks every nice step for about `targetTicks` of them. `snap` widens the range out to whole steps,
        /// so the data sits between the outer ticks; without it the range is kept and the ticks fall inside.
        /// A zero or non-finite range is widened, never kept.
        public init(lower: Double, upper: Double, targetTicks: Int = 5, snap: Bool) {
            // Bounded so that differences and snapped ends stay finite.
            let limit = 1e306
            var lo = lower.isFinite ? min(max(lower, -limit), limit) : 0, hi = upper.isFinite ? min(max(upper, -limit), limit) : 1
            if lo > hi { swap(&lo, &hi) }
            let magnitude = max(abs(lo), abs(hi))
            if hi - lo <= magnitude * 1e-9 || hi - lo < 1e-300 {
                let centre = lo / 2 + hi / 2
                let half = centre == 0 || abs(centre) < 1e-300 ? 1 : abs(centre) * 0.1
                (lo, hi) = (centre - half, centre + half)
            }
            step = Self.niceStep((hi - lo) / Double(max(targetTicks, 1)))
            if snap {
                let snappedLo = (lo / step).rounded(.down) * step, snappedHi = (hi / step).rounded(.up) * step
                if snappedLo.isFinite, snappedHi.isFinite, snappedLo < snappedHi { (lo, hi) = (snappedLo, snappedHi) }
            }
            (self.lower, self.upper) = (lo, hi)
            // Ticks from whole multiples of the step (no running sum: no drift, and a bounded count).
            let first = (lo / step - 1e-9).rounded(.up), last = (hi / step + 1e-9).rounded(.down)
            ticks = []
            if first.isFinite, last.isFinite, last >= first, last - first <= 100 {
                for i in 0...Int(last - first) {
                    let tick = (first + Double(i)) * step
                    ticks.append(tick == 0 ? 0 : tick) // no -0
                }
            }
            if ticks.isEmpty { ticks = [lo, hi] }
        }

        /// Tick label text with as many decimals as the step needs.
        public func label(_ value: Double) -> String {
            let v = abs(value) < step * 1e-6 ? 0 : value
            let largest = max(abs(lower), abs(upper))
            if largest >= 1e7 || step < 1e-5 { return String(format: "%.3g", v) }
            let decimals = max(0, -Int((Foundation.log10(step) + 1e-9).rounded(.down)))
            return String(format: "%.\(decimals)f", v)
        }
    }

    /// Exponential moving average with bias correction (TensorBoard's smoothing): early values are not
    /// pulled towards zero. Non-finite inputs give NaN at their position and leave the average untouched.
    public static func exponentialMovingAverage(_ values: [Double], smoothing: Double) -> [Double] {
        precondition(smoothing >= 0 && smoothing < 1, "exponentialMovingAverage: smoothing \(smoothing) must be in [0, 1)")
        var average = 0.0, weight = 0.0
        return values.map { value in
            guard value.isFinite else { return .nan }
            average = smoothing * average + (1 - smoothing) * value
            weight = smoothing * weight + (1 - smoothing)
            return average / weight
        }
    }

    /// How the training loss is smoothed for its dark line.
    public enum Smoothing: Equatable, Sendable {
        /// A centred moving average over 1 % of the values on each side (at least 2): no lag behind the raw
        /// curve, and the fast early fall of a training loss keeps its shape.
        case automatic
        /// The mean of the values within `halfWindow` positions on each side (fewer at the ends).
        case movingAverage(halfWindow: Int)
        /// TensorBoard-style exponential moving average with this factor (0…1); lags behind a trend.
        case exponential(Double)
        case none
    }

    /// Centred moving average: position i averages the finite values within `halfWindow` positions on each
    /// side, so the smoothed line does not lag behind the raw one. Near the ends the window is shifted to
    /// stay inside the values and the value comes from a least-squares straight line over it (in the interior
    /// the two agree), so a falling curve is neither flattened nor hooked at its ends. Non-finite inputs give
    /// NaN at their position and are left out of their neighbours' windows.
    public static func centredMovingAverage(_ values: [Double], halfWindow: Int) -> [Double] {
        precondition(halfWindow >= 0, "centredMovingAverage: halfWindow \(halfWindow) must be ≥ 0")
        // Prefix sums over the finite values of: 1, j, j², y, j·y (j = position).
        let n = values.count
        var count = [Double](repeating: 0, count: n + 1), sumJ = count, sumJJ = count, sumY = count, sumJY = count
        for (j, y) in values.enumerated() {
            let finite = y.isFinite, jj = Double(j)
            count[j + 1] = count[j] + (finite ? 1 : 0)
            sumJ[j + 1] = sumJ[j] + (finite ? jj : 0)
            sumJJ[j + 1] = sumJJ[j] + (finite ? jj * jj : 0)
            sumY[j + 1] = sumY[j] + (finite ? y : 0)
            sumJY[j + 1] = sumJY[j] + (finite ? jj * y : 0)
        }
        return values.indices.map { i in
            guard values[i].isFinite else { return .nan }
            // The full window, shifted (not shrunk) to stay inside the values.
            let size = min(2 * halfWindow + 1, n)
            let lo = min(max(i - halfWindow, 0), n - size), hi = lo + size
            let k = count[hi] - count[lo]
            let meanJ = (sumJ[hi] - sumJ[lo]) / k, meanY = (sumY[hi] - sumY[lo]) / k
            let varianceJ = (sumJJ[hi] - sumJJ[lo]) / k - meanJ * meanJ
            let covariance = (sumJY[hi] - sumJY[lo]) / k - meanJ * meanY
            let slope = varianceJ > 1e-6 ? covariance / varianceJ : 0
            return meanY + slope * (Double(i) - meanJ)
        }
    }

    static func smoothed(_ values: [Double], _ smoothing: Smoothing) -> [Double]? {
        switch smoothing {
        case .automatic: return centredMovingAverage(values, halfWindow: max(2, values.count / 100))
        case .movingAverage(let halfWindow): return centredMovingAverage(values, halfWindow: halfWindow)
        case .exponential(let factor): return exponentialMovingAverage(values, smoothing: factor)
        case .none: return nil
        }
    }

    /// The two panels of curves.png: training loss (raw, light, plus its smoothed line) and validation mIoU
    /// (points and line, best value in the legend), over the same iteration range.
    public static func trainingPanels(loss: [(iteration: Int, value: Double)], validation: [(iteration: Int, mIoU: Double)],
                                      smoothing: Smoothing = .automatic) -> [Panel] {
        let lossX = loss.map { Double($0.iteration) }, lossY = loss.map(\.value)
        let valX = validation.map { Double($0.iteration) }, valY = validation.map(\.mIoU)
        let allX = (lossX + valX).filter(\.isFinite)
        let xRange = allX.min().flatMap { lo in allX.max().map { hi in lo...hi } }
        var lossSeries: [Series]
        if loss.count >= 3, let smoothedY = smoothed(lossY, smoothing) {
            lossSeries = [Series(name: "raw", x: lossX, y: lossY, color: .blue, lineWidth: 1, opacity: 0.3),
                          Series(name: "smoothed", x: lossX, y: smoothedY, color: .blue, lineWidth: 2)]
        } else {
            lossSeries = [Series(name: "", x: lossX, y: lossY, color: .blue, lineWidth: 1.5)]
        }
        var valName = "val"
        if let best = validation.filter({ $0.mIoU.isFinite }).max(by: { $0.mIoU < $1.mIoU }) {
            valName = "best " + String(format: "%.4g", best.mIoU) + " @ \(best.iteration)"
        }
        let valSeries = Series(name: valName, x: valX, y: valY, color: .orange, style: .lineAndMarkers, lineWidth: 1.5, markerRadius: 3)
        return [Panel(title: "train loss", series: lossSeries, xRange: xRange),
                Panel(title: "val mIoU", series: [valSeries], xRange: xRange)]
    }

    /// One panel filling the whole image.
    public static func render(series: [Series], title: String = "", xLabel: String = "iteration", yLabel: String = "",
                              width: Int = 960, height: Int = 400) -> RGBImage {
        render(panels: [Panel(title: title, xLabel: xLabel, yLabel: yLabel, series: series)], width: width, height: height)
    }

    /// Panels side by side or stacked (`automatic`: whichever makes each panel's shape closer to 3 : 2),
    /// on a white background.
    public static func render(panels: [Panel], width: Int = 960, height: Int = 400, layout: Layout = .automatic) -> RGBImage {
        var canvas = PlotCanvas(width: width, height: height)
        guard !panels.isEmpty else { return canvas.image }
        let n = panels.count
        let sideBySide: Bool
        switch layout {
        case .sideBySide: sideBySide = true
        case .stacked: sideBySide = false
        case .automatic:
            func distanceFromThreeToTwo(_ w: Double, _ h: Double) -> Double { abs(Foundation.log(w / h / 1.5)) }
            let (w, h) = (Double(width), Double(height))
            sideBySide = distanceFromThreeToTwo(w / Double(n), h) <= distanceFromThreeToTwo(w, h / Double(n))
        }
        // Text grows with large images so it stays legible when the PNG is shown scaled down.
        let scale = max(1, min(width / (sideBySide ? n : 1), height / (sideBySide ? 1 : n)) / 400)
        for (index, panel) in panels.enumerated() {
            let box = sideBySide
                ? (x: index * width / n, y: 0, width: (index + 1) * width / n - index * width / n, height: height)
                : (x: 0, y: index * height / n, width: width, height: (index + 1) * height / n - index * height / n)
            drawPanel(panel, in: box, on: &canvas, textScale: scale)
        }
        return canvas.image
    }

    /// Renders the panels and writes them atomically as an RGB PNG; errors name `path`.
    public static func writePNG(path: String, panels: [Panel], width: Int = 960, height: Int = 400, layout: Layout = .automatic) throws {
        let image = render(panels: panels, width: width, height: height, layout: layout)
        let png = try ImageCodecs.encodePNG(pixels: image.pixels, width: image.width, height: image.height, kind: .rgb, name: path)
        try ReportOutputError.createFolder((path as NSString).deletingLastPathComponent, for: path)
        try ReportOutputError.writing(path) { try AtomicFile.write(png, to: URL(fileURLWithPath: path)) }
    }

    // MARK: Drawing one panel

    private static func drawPanel(_ panel: Panel, in box: (x: Int, y: Int, width: Int, height: Int), on canvas: inout PlotCanvas, textScale s: Int) {
        let points = panel.series.map(\.finitePoints)
        let allPoints = points.joined()
        let isEmpty = allPoints.isEmpty
        let glyphH = BitmapFont.glyphHeight * s, capH = BitmapFont.capHeight * s, tickLength = 4 * s

        // Vertical layout: title band, plot, x tick labels, x label.
        let titleTop = box.y + 10 * s
        let top = titleTop + 2 * capH + 10 * s
        let bottom = box.y + box.height - 1 - (tickLength + 4 * s + glyphH + (panel.xLabel.isEmpty ? 0 : 6 * s + glyphH) + 8 * s)

        // Data ranges; y first, since its label width sets the left margin.
        let ys = allPoints.map(\.y), xs = allPoints.map(\.x)
        let yTarget = min(max((bottom - top) / (40 * s), 2), 8)
        let yAxis: Axis
        if let fixed = panel.yRange, fixed.lowerBound.isFinite, fixed.upperBound.isFinite {
            yAxis = Axis(lower: fixed.lowerBound, upper: fixed.upperBound, targetTicks: yTarget, snap: false)
        } else {
            yAxis = Axis(lower: ys.min() ?? 0, upper: ys.max() ?? 1, targetTicks: yTarget, snap: true)
        }
        let yLabels = yAxis.ticks.map { yAxis.label($0) }
        let yLabelWidth = yLabels.map { BitmapFont.width(of: $0, scale: s) }.max() ?? 0
        let left = box.x + 12 * s + (panel.yLabel.isEmpty ? 0 : glyphH + 8 * s) + yLabelWidth + 4 * s + tickLength
        let right = box.x + box.width - 1 - 18 * s
        guard right - left >= 8 + 10 * s, bottom - top >= 8 + 10 * s else { return } // too small to draw a plot

        var xLower: Double, xUpper: Double
        if let fixed = panel.xRange, fixed.lowerBound.isFinite, fixed.upperBound.isFinite {
            (xLower, xUpper) = (fixed.lowerBound, fixed.upperBound)
        } else {
            (xLower, xUpper) = (xs.min() ?? 0, xs.max() ?? 1)
        }
        // Iterations logged from 1 (or 10): start the axis at 0 rather than at the first value.
        if xLower > 0, xLower <= 0.05 * xUpper { xLower = 0 }
        // Fewer x ticks until their labels leave a gap between them.
        let xTarget = min(max((right - left) / (90 * s), 2), 10)
        var xAxis = Axis(lower: xLower, upper: xUpper, targetTicks: xTarget, snap: false)
        for target in stride(from: xTarget, through: 1, by: -1) {
            xAxis = Axis(lower: xLower, upper: xUpper, targetTicks: target, snap: false)
            let widest = xAxis.ticks.map { BitmapFont.width(of: xAxis.label($0), scale: s) }.max() ?? 0
            let spacing = Double(right - left - 10 * s) * xAxis.step / (xAxis.upper - xAxis.lower)
            if spacing >= Double(widest + 14 * s) { break }
        }

        // Canvas coordinates of data values; values far outside the axes land far off the canvas, never at NaN.
        func clampCoordinate(_ c: Double) -> Double { c.isNaN ? -1e6 : min(max(c, -1e6), 1e6) }
        // The axis ranges end a few pixels inside the frame, so values on the range ends (a loss at 0, the last
        // validation) are not hidden under it.
        let inset = 5 * s
        let (dataLeft, dataRight, dataTop, dataBottom) = (left + inset, right - inset, top + inset, bottom - inset)
        func mapX(_ v: Double) -> Double {
            clampCoordinate(Double(dataLeft) + 0.5 + (v - xAxis.lower) / (xAxis.upper - xAxis.lower) * Double(dataRight - dataLeft))
        }
        func mapY(_ v: Double) -> Double {
            clampCoordinate(Double(dataBottom) + 0.5 - (v - yAxis.lower) / (yAxis.upper - yAxis.lower) * Double(dataBottom - dataTop))
        }

        // Grid.
        for tick in yAxis.ticks {
            let py = Int(mapY(tick).rounded(.down))
            if py > top, py < bottom { canvas.fill(x: left + 1, y: py, width: right - left - 1, height: 1, color: .grid) }
        }
        for tick in xAxis.ticks {
            let px = Int(mapX(tick).rounded(.down))
            if px > left, px < right { canvas.fill(x: px, y: top + 1, width: 1, height: bottom - top - 1, color: .grid) }
        }

        // Series, each through its own coverage mask clipped to the inside of the frame (the inset leaves
        // room for markers on the range ends).
        for (series, seriesPoints) in zip(panel.series, points) where !seriesPoints.isEmpty {
            let halfWidth = max(series.lineWidth, 0.5) / 2
            var mask = CoverageMask(x: left + 1, y: top + 1, width: right - left - 1, height: bottom - top - 1)
            let mapped = seriesPoints.map { (mapX($0.x), mapY($0.y)) }
            if series.style != .markers {
                for i in mapped.indices.dropFirst() {
                    mask.addSegment(mapped[i - 1].0, mapped[i - 1].1, mapped[i].0, mapped[i].1, halfWidth: halfWidth * Double(s))
                }
            }
            // Markers only where they stay apart; a lone point always shows as a dot.
            let markersFit = Double(mapped.count) * series.markerRadius * 3 <= Double(right - left)
            if series.style != .line, markersFit {
                for p in mapped { mask.addDisc(p.0, p.1, radius: series.markerRadius * Double(s)) }
            } else if mapped.count == 1 {
                mask.addDisc(mapped[0].0, mapped[0].1, radius: max(series.markerRadius, halfWidth * 2) * Double(s))
            }
            mask.composite(onto: &canvas, color: series.color, opacity: series.opacity)
        }

        // Frame and ticks over the data.
        canvas.fill(x: left, y: top, width: right - left + 1, height: 1, color: .frame)
        canvas.fill(x: left, y: bottom, width: right - left + 1, height: 1, color: .frame)
        canvas.fill(x: left, y: top, width: 1, height: bottom - top + 1, color: .frame)
        canvas.fill(x: right, y: top, width: 1, height: bottom - top + 1, color: .frame)
        for (tick, text) in zip(yAxis.ticks, yLabels) {
            let py = min(max(Int(mapY(tick).rounded(.down)), top), bottom)
            canvas.fill(x: left - tickLength, y: py, width: tickLength, height: 1, color: .frame)
            canvas.drawText(text, x: left - tickLength - 3 * s - BitmapFont.width(of: text, scale: s), y: py - capH / 2, scale: s)
        }
        for tick in xAxis.ticks {
            let px = min(max(Int(mapX(tick).rounded(.down)), left), right)
            canvas.fill(x: px, y: bottom + 1, width: 1, height: tickLength, color: .frame)
            let text = xAxis.label(tick)
            canvas.drawText(text, x: px - BitmapFont.width(of: text, scale: s) / 2, y: bottom + tickLength + 4 * s, scale: s)
        }

        // Labels, title and legend.
        if !panel.xLabel.isEmpty {
            let labelWidth = BitmapFont.width(of: panel.xLabel, scale: s)
            canvas.drawText(panel.xLabel, x: (left + right) / 2 - labelWidth / 2, y: bottom + tickLength + 4 * s + glyphH + 6 * s, scale: s)
        }
        if !panel.yLabel.isEmpty {
            let labelWidth = BitmapFont.width(of: panel.yLabel, scale: s)
            canvas.drawText(panel.yLabel, x: box.x + 10 * s, y: (top + bottom) / 2 + labelWidth / 2, scale: s, rotated: true)
        }
        canvas.drawText(panel.title, x: left, y: titleTop, scale: 2 * s)
        drawLegend(zip(panel.series, points).filter { !$0.0.name.isEmpty && !$0.1.isEmpty }.map(\.0), rightEdge: right, centreY: titleTop + capH,
                   leftLimit: left + BitmapFont.width(of: panel.title, scale: 2 * s) + 16 * s, on: &canvas, textScale: s)
        if isEmpty {
            let noteWidth = BitmapFont.width(of: panel.emptyNote, scale: 2 * s)
            canvas.drawText(panel.emptyNote, x: (left + right) / 2 - noteWidth / 2, y: (top + bottom) / 2 - capH, color: .mutedText, scale: 2 * s)
        }
    }

    /// Legend entries right-aligned in the title band (a short line sample, then the name); left out when
    /// they would run into the title.
    private static func drawLegend(_ series: [Series], rightEdge: Int, centreY: Int, leftLimit: Int, on canvas: inout PlotCanvas, textScale s: Int) {
        guard !series.isEmpty else { return }
        let sample = 18 * s, gap = 5 * s, spacing = 14 * s
        let widths = series.map { sample + gap + BitmapFont.width(of: $0.name, scale: s) }
        var x = rightEdge - widths.reduce(0, +) - spacing * (series.count - 1)
        guard x >= leftLimit else { return }
        for (entry, entryWidth) in zip(series, widths) {
            let margin = Int((entry.markerRadius + 2).rounded(.up)) * s
            var mask = CoverageMask(x: x - margin, y: centreY - margin, width: sample + 2 * margin, height: 2 * margin + 1)
            let cy = Double(centreY) + 0.5
            if entry.style != .markers {
                mask.addSegment(Double(x), cy, Double(x + sample), cy, halfWidth: max(entry.lineWidth, 0.5) / 2 * Double(s))
            }
            if entry.style != .line { mask.addDisc(Double(x) + Double(sample) / 2, cy, radius: entry.markerRadius * Double(s)) }
            mask.composite(onto: &canvas, color: entry.color, opacity: entry.opacity)
            canvas.drawText(entry.name, x: x + sample + gap, y: centreY - BitmapFont.capHeight * s / 2, scale: s)
            x += entryWidth + spacing
        }
    }
}
