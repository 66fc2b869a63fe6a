// Writing predictions: for one image (H × W class indices) into an output folder,
//   <stem>.png                 palette-mode PNG: the pixel values are the class indices (tools read labels),
//                              the colour table is the dataset palette (viewers show colours);
//   <stem>_overlay.png         optional RGB: the original image blended with the class colours;
//   <stem>_probs.safetensors   optional: tensor "probabilities" [K, H, W] float32, class names in the metadata.
// Shapes: K classes, H × W pixels (the prediction, image and probabilities must agree). Every file is written
// atomically, and every error names the file it concerns.
import AdaData
import AdaIO
import AdaTensor
import Foundation

public enum ReportOutputError: Error, CustomStringConvertible, Equatable {
    case invalidInput(file: String, reason: String)
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidInput(file, reason): return "\(file): \(reason)"
        case let .writeFailed(file, reason): return "\(file): cannot write: \(reason)"
        }
    }

    public var file: String {
        switch self {
        case let .invalidInput(file, _), let .writeFailed(file, _): return file
        }
    }

    /// Creates `folder` (with its parents) unless it exists; a file in its place is reported against `file`.
    static func createFolder(_ folder: String, for file: String) throws {
        let folder = folder.isEmpty ? "." : folder // a bare file name lives in the working directory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw writeFailed(file: file, reason: "\(folder) exists and is not a folder") }
            return
        }
        try writing(file) { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
    }

    /// Runs a file write, turning any error that does not already name the file into one that does.
    static func writing(_ file: String, _ body: () throws -> Void) throws {
        do { try body() } catch let error as ReportOutputError { throw error } catch let error as ImageCodecError {
            throw error
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ReportOutputError.writeFailed(file: file, reason: reason)
        }
    }
}

public struct PredictionWriter {
    /// The files written for one prediction (nil: not requested).
    public struct Written: Equatable, Sendable {
        public var mask: String
        public var overlay: String?
        public var probabilities: String?
    }

    public var outputDirectory: String
    /// RGB (0–255) per class, index = class; entries missing for larger indices are filled in.
    public var palette: [[Int]]
    /// Class names for the probability file's metadata (empty: not recorded, K unchecked).
    public var classNames: [String]
    /// Weight of the class colour in the overlay (0 = image only, 1 = colours only).
    public var overlayAlpha: Double

    public init(outputDirectory: String, palette: [[Int]], classNames: [String] = [], overlayAlpha: Double = 0.5) {
        precondition((0...1).contains(overlayAlpha), "PredictionWriter: overlayAlpha \(overlayAlpha) must be in 0…1")
        for (index, color) in palette.enumerated() {
            precondition(color.count == 3, "PredictionWriter: palette entry \(index) is \(color), expected [r, g, b]")
        }
        (self.outputDirectory, self.palette, self.classNames, self.overlayAlpha) = (outputDirectory, palette, classNames, overlayAlpha)
    }

    public func maskPath(stem: String) -> String { path(stem + ".png") }
    public func overlayPath(stem: String) -> String { path(stem + "_overlay.png") }
    public func probabilitiesPath(stem: String) -> String { path(stem + "_probs.safetensors") }

    private func path(_ name: String) -> String { (outputDirectory as NSString).appendingPathComponent(name) }

    /// Writes `<stem>.png`, and `<stem>_overlay.png` when `image` is given, and `<stem>_probs.safetensors` when
    /// `probabilities` ([K, H, W] or [1, K, H, W]) is given. `prediction` holds H × W class indices, row-major.
    @discardableResult
    public func write(stem: String, prediction: [UInt8], width: Int, height: Int, image: RGBImage? = nil,
                      probabilities: Tensor? = nil) throws -> Written {
        precondition(!stem.isEmpty, "PredictionWriter: empty file stem")
        let maskFile = maskPath(stem: stem)
        guard width > 0, height > 0, prediction.count == width * height else {
            throw ReportOutputError.invalidInput(file: maskFile, reason: "prediction has \(prediction.count) values for \(width)×\(height)")
        }
        try ReportOutputError.createFolder(outputDirectory, for: outputDirectory)
        let colors = Self.colorTable(palette: palette, covering: Int(prediction.max() ?? 0))

        let png = try ImageCodecs.encodePNG(pixels: prediction, width: width, height: height, kind: .palette(colors), name: maskFile)
        try ReportOutputError.writing(maskFile) { try AtomicFile.write(png, to: URL(fileURLWithPath: maskFile)) }
        var written = Written(mask: maskFile)

        if let image {
            let file = overlayPath(stem: stem)
            guard image.width == width, image.height == height else {
                throw ReportOutputError.invalidInput(
                    file: file, reason: "image is \(image.width)×\(image.height) but the prediction is \(width)×\(height)")
            }
            let blended = Self.overlay(image: image, prediction: prediction, colors: colors, alpha: overlayAlpha)
            let data = try ImageCodecs.encodePNG(pixels: blended.pixels, width: width, height: height, kind: .rgb, name: file)
            try ReportOutputError.writing(file) { try AtomicFile.write(data, to: URL(fileURLWithPath: file)) }
            written.overlay = file
        }

        if let probabilities {
            let file = probabilitiesPath(stem: stem)
            let data = try probabilitiesFile(probabilities, width: width, height: height, file: file)
            try ReportOutputError.writing(file) { try AtomicFile.write(data, to: URL(fileURLWithPath: file)) }
            written.probabilities = file
        }
        return written
    }

    /// The same for Int32 indices (e.g. an argmax over logits); each must be 0…255 to fit the 8-bit PNG.
    @discardableResult
    public func write(stem: String, prediction: [Int32], width: Int, height: Int, image: RGBImage? = nil,
                      probabilities: Tensor? = nil) throws -> Written {
        if let bad = prediction.firstIndex(where: { !(0...255).contains($0) }) {
            throw ReportOutputError.invalidInput(
                file: maskPath(stem: stem),
                reason: "class index \(prediction[bad]) at pixel (\(width > 0 ? bad % width : bad), \(width > 0 ? bad / width : 0)) is outside 0…255")
        }
        return try write(stem: stem, prediction: prediction.map { UInt8($0) }, width: width, height: height,
                         image: image, probabilities: probabilities)
    }

    /// The same for a label map.
    @discardableResult
    public func write(stem: String, prediction: LabelMask, image: RGBImage? = nil, probabilities: Tensor? = nil) throws -> Written {
        try write(stem: stem, prediction: prediction.labels, width: prediction.width, height: prediction.height,
                  image: image, probabilities: probabilities)
    }

    // MARK: Pieces (public for tests and other reports)

    /// The PNG colour table: the palette (values clamped to 0…255), extended up to index `maxIndex` with the
    /// default VOC colours of those indices (so 255, "ignore", gets the usual (224, 224, 192)); at most 256.
    public static func colorTable(palette: [[Int]], covering maxIndex: Int) -> [(UInt8, UInt8, UInt8)] {
        let count = min(max(palette.count, maxIndex + 1, 1), 256)
        let fallback = count > palette.count ? DatasetConfig.defaultPalette(count: count) : []
        return (0..<count).map { index in
            let rgb = index < palette.count ? palette[index] : fallback[index]
            func channel(_ i: Int) -> UInt8 { UInt8(min(max(i < rgb.count ? rgb[i] : 0, 0), 255)) }
            return (channel(0), channel(1), channel(2))
        }
    }

    /// out = round((1 − alpha)·image + alpha·colour[class]) per channel. `colors` must cover every index.
    public static func overlay(image: RGBImage, prediction: [UInt8], colors: [(UInt8, UInt8, UInt8)], alpha: Double) -> RGBImage {
        precondition(prediction.count == image.width * image.height,
                     "overlay: \(prediction.count) class indices for a \(image.width)×\(image.height) image")
        let flat = colors.flatMap { [Float($0.0), Float($0.1), Float($0.2)] }
        precondition(Int(prediction.max() ?? 0) < colors.count, "overlay: class index \(prediction.max() ?? 0) has no colour (\(colors.count))")
        let a = Float(alpha), keep = 1 - a
        var out = [UInt8](repeating: 0, count: image.pixels.count)
        image.pixels.withUnsafeBufferPointer { source in
            prediction.withUnsafeBufferPointer { classes in
                flat.withUnsafeBufferPointer { table in
                    out.withUnsafeMutableBufferPointer { target in
                        for i in 0..<classes.count {
                            let c = Int(classes[i]) * 3, p = i * 3
                            for channel in 0..<3 {
                                target[p + channel] = UInt8(min(max((keep * Float(source[p + channel]) + a * table[c + channel]).rounded(), 0), 255))
                            }
                        }
                    }
                }
            }
        }
        return RGBImage(width: image.width, height: image.height, pixels: out)
    }

    /// The safetensors bytes of the probability file: "probabilities" [K, H, W] float32, metadata
    /// {"classes": JSON list of names} when names are known.
    func probabilitiesFile(_ probabilities: Tensor, width: Int, height: Int, file: String) throws -> Data {
        let shape = probabilities.shape
        let classShape: [Int]
        if shape.count == 3 { classShape = shape } else if shape.count == 4, shape[0] == 1 { classShape = Array(shape.dropFirst()) } else {
            throw ReportOutputError.invalidInput(file: file, reason: "probabilities have shape \(shape), expected [K, H, W] or [1, K, H, W]")
        }
        guard classShape[1] == height, classShape[2] == width else {
            throw ReportOutputError.invalidInput(
                file: file, reason: "probabilities have shape \(shape) but the prediction is \(height)×\(width) (H×W)")
        }
        var metadata: [String: String] = [:]
        if !classNames.isEmpty {
            guard classNames.count == classShape[0] else {
                throw ReportOutputError.invalidInput(
                    file: file, reason: "probabilities have \(classShape[0]) classes (shape \(shape)) but \(classNames.count) class names are given")
            }
            let json = try JSONSerialization.data(withJSONObject: classNames, options: [])
            metadata["classes"] = String(decoding: json, as: UTF8.self)
        }
        var writer = SafeTensorsWriter(metadata: metadata)
        // A view with the batch dimension dropped; shares the storage, copies nothing.
        writer.add("probabilities", Tensor(shape: classShape, storage: probabilities.storage))
        return try writer.serialized()
    }
}
