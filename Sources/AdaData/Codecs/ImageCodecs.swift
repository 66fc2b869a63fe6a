// Decoding images and index masks, and encoding PNGs, through the C shim over libjpeg and libpng
// (their longjmp error handling stays in C). Every failure names the file and the reason.
import CImageCodecs
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved (H × W × 3).
public struct RGBImage: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3, "RGBImage: \(pixels.count) bytes for \(width)×\(height)×3")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// A label map (H × W class indices; 255 = ignore).
public struct LabelMask: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var labels: [UInt8]

    public init(width: Int, height: Int, labels: [UInt8]) {
        precondition(labels.count == width * height, "LabelMask: \(labels.count) labels for \(width)×\(height)")
        self.width = width
        self.height = height
        self.labels = labels
    }
}

public enum ImageCodecError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case corrupt(file: String, reason: String)
    case unsupported(file: String, reason: String)
    case encodingFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read: \(reason)"
        case let .corrupt(file, reason): return "\(file): \(reason)"
        case let .unsupported(file, reason): return "\(file): unsupported image: \(reason)"
        case let .encodingFailed(file, reason): return "\(file): cannot write PNG: \(reason)"
        }
    }

    public var file: String {
        switch self {
        case let .unreadable(f, _), let .corrupt(f, _), let .unsupported(f, _), let .encodingFailed(f, _): return f
        }
    }
}

public enum ImageCodecs {
    /// The codec library versions linked into this binary.
    public static var libraryVersions: String { String(cString: aic_library_versions()) }

    static func read(_ path: String) throws -> Data {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ImageCodecError.unreadable(file: path, reason: (error as NSError).localizedFailureReason ?? "\(error.localizedDescription)")
        }
        guard !data.isEmpty else { throw ImageCodecError.corrupt(file: path, reason: "empty file (0 bytes)") }
        return data
    }

    static func isPNG(_ data: Data) -> Bool { data.starts(with: [0x89, 0x50, 0x4E, 0x47]) }
    static func isJPEG(_ data: Data) -> Bool { data.starts(with: [0xFF, 0xD8]) }

    /// Decodes a JPEG or PNG file (chosen by content, not by name) to 8-bit RGB.
    public static func decodeImage(path: String) throws -> RGBImage {
        try decodeImage(data: read(path), name: path)
    }

    public static func decodeImage(data: Data, name: String) throws -> RGBImage {
        let raster: aic_raster
        if isJPEG(data) {
            raster = try decode(data, name: name) { p, n, r, m, ms in aic_decode_jpeg(p, n, r, m, ms) }
        } else if isPNG(data) {
            raster = try decode(data, name: name) { p, n, r, m, ms in aic_decode_png(p, n, Int32(AIC_PNG_COLOR), r, m, ms) }
        } else {
            throw ImageCodecError.unsupported(file: name, reason: "not a JPEG or PNG file")
        }
        defer { aic_free(raster.pixels) }
        let count = Int(raster.width) * Int(raster.height) * 3
        let bytes = Array(UnsafeBufferPointer(start: raster.pixels.assumingMemoryBound(to: UInt8.self), count: count))
        return RGBImage(width: Int(raster.width), height: Int(raster.height), pixels: bytes)
    }

    /// Width and height of a JPEG or PNG from its header, without decoding the pixels (dataset indexing
    /// checks sizes this way). A clean probe does not prove the pixel data is intact.
    public static func imageSize(path: String) throws -> (width: Int, height: Int) {
        try imageSize(data: read(path), name: path)
    }

    public static func imageSize(data: Data, name: String) throws -> (width: Int, height: Int) {
        guard isJPEG(data) || isPNG(data) else {
            throw ImageCodecError.unsupported(file: name, reason: "not a JPEG or PNG file")
        }
        var width: Int32 = 0, height: Int32 = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { raw in
            aic_probe_image(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, &width, &height, &message, message.count)
        }
        guard status == Int32(AIC_OK) else {
            let text = String(cString: message)
            if text.contains("not supported") { throw ImageCodecError.unsupported(file: name, reason: text) }
            throw ImageCodecError.corrupt(file: name, reason: text)
        }
        return (Int(width), Int(height))
    }

    /// Decodes a single-channel PNG mask to raw indices: a palette PNG gives its indices, not colours;
    /// 16-bit masks are accepted when every value fits in 8 bits.
    public static func decodeMask(path: String) throws -> LabelMask {
        try decodeMask(data: read(path), name: path)
    }

    public static func decodeMask(data: Data, name: String) throws -> LabelMask {
        guard isPNG(data) else { throw ImageCodecError.unsupported(file: name, reason: "masks must be PNG files") }
        let raster = try decode(data, name: name) { p, n, r, m, ms in aic_decode_png(p, n, Int32(AIC_PNG_INDEX), r, m, ms) }
        defer { aic_free(raster.pixels) }
        let count = Int(raster.width) * Int(raster.height)
        var labels = [UInt8](repeating: 0, count: count)
        if raster.depth == 16 {
            let wide = raster.pixels.assumingMemoryBound(to: UInt16.self)
            for i in 0..<count {
                guard wide[i] <= 255 else {
                    throw ImageCodecError.unsupported(file: name, reason: "16-bit mask holds label \(wide[i]) (labels must be 0…255)")
                }
                labels[i] = UInt8(wide[i])
            }
        } else {
            labels.withUnsafeMutableBufferPointer { $0.baseAddress!.update(from: raster.pixels.assumingMemoryBound(to: UInt8.self), count: count) }
        }
        return LabelMask(width: Int(raster.width), height: Int(raster.height), labels: labels)
    }

    private static func decode(_ data: Data, name: String,
                               _ call: (UnsafePointer<UInt8>, Int, UnsafeMutablePointer<aic_raster>, UnsafeMutablePointer<CChar>, Int) -> Int32) throws -> aic_raster {
        var raster = aic_raster()
        var message = [CChar](repeating: 0, count: 512)
        let status = data.withUnsafeBytes { raw in
            call(raw.bindMemory(to: UInt8.self).baseAddress!, raw.count, &raster, &message, message.count)
        }
        guard status == Int32(AIC_OK) else {
            let text = String(cString: message)
            if text.contains("not supported") || text.contains("single-channel") {
                throw ImageCodecError.unsupported(file: name, reason: text)
            }
            throw ImageCodecError.corrupt(file: name, reason: text)
        }
        return raster
    }

    public enum PNGKind {
        case gray
        case rgb
        /// Indices with a colour table of RGB triples (at most 256 entries).
        case palette([(UInt8, UInt8, UInt8)])
    }

    /// Encodes 8-bit pixels (gray or palette indices: H×W, RGB: H×W×3) as a PNG.
    public static func encodePNG(pixels: [UInt8], width: Int, height: Int, kind: PNGKind, fast: Bool = false,
                                 name: String = "<png>") throws -> Data {
        var channels: Int32 = 1
        var table: [UInt8] = []
        switch kind {
        case .gray: break
        case .rgb: channels = 3
        case .palette(let colors):
            table = colors.flatMap { [$0.0, $0.1, $0.2] }
            if let top = pixels.max(), Int(top) >= colors.count {
                throw ImageCodecError.encodingFailed(file: name, reason: "index \(top) has no palette entry (\(colors.count) colours)")
            }
        }
        guard pixels.count == width * height * Int(channels) else {
            throw ImageCodecError.encodingFailed(file: name, reason: "\(pixels.count) bytes for \(width)×\(height)×\(channels)")
        }
        var out: UnsafeMutablePointer<UInt8>?
        var size = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = pixels.withUnsafeBufferPointer { p in
            table.withUnsafeBufferPointer { t in
                aic_encode_png(p.baseAddress, Int32(width), Int32(height), channels, table.isEmpty ? nil : t.baseAddress,
                               Int32(table.count / 3), fast ? 1 : 0, &out, &size, &message, message.count)
            }
        }
        guard status == Int32(AIC_OK), let out else {
            throw ImageCodecError.encodingFailed(file: name, reason: String(cString: message))
        }
        defer { aic_free(out) }
        return Data(bytes: out, count: size)
    }
}
