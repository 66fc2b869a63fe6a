import AdaData
import Foundation
import Testing

/// Tiny JPEGs committed beside this file (made with Pillow from flat 8×8 colour blocks, quality 100,
/// no chroma subsampling), so their decoded pixels are known to within rounding.
@Suite("JPEG decoding")
struct JPEGTests {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let blocks: [(Int, Int, Int)] = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (240, 200, 40), (20, 20, 20), (128, 128, 128)]

    static func path(_ name: String) -> String { folder.appendingPathComponent(name).path }

    @Test(arguments: ["blocks_q100.jpg", "blocks_progressive.jpg"])
    func baselineAndProgressiveDecodeToTheKnownBlocks(file: String) throws {
        let image = try ImageCodecs.decodeImage(path: Self.path(file))
        #expect(image.width == 24 && image.height == 16)
        var worst = 0
        for y in 0..<16 {
            for x in 0..<24 {
                let (r, g, b) = Self.blocks[(y / 8) * 3 + x / 8]
                let i = (y * 24 + x) * 3
                worst = max(worst, abs(Int(image.pixels[i]) - r), abs(Int(image.pixels[i + 1]) - g), abs(Int(image.pixels[i + 2]) - b))
            }
        }
        #expect(worst <= 3, "max channel error \(worst)")
    }

    @Test func grayscaleBecomesRGB() throws {
        let image = try ImageCodecs.decodeImage(path: Self.path("gray.jpg"))
        #expect(image.width == 16 && image.height == 8)
        for x in [0, 7, 8, 15] {
            let i = (4 * 16 + x) * 3
            #expect(image.pixels[i] == image.pixels[i + 1] && image.pixels[i + 1] == image.pixels[i + 2])
            #expect(abs(Int(image.pixels[i]) - (x < 8 ? 30 : 200)) <= 2)
        }
    }

    @Test func cmykIsRefusedWithAMessage() {
        let path = Self.path("cmyk.jpg")
        #expect { try ImageCodecs.decodeImage(path: path) } throws: { error in
            "\(error)".contains(path) && "\(error)".contains("CMYK")
        }
    }
}

@Suite("PNG variants")
struct PNGVariantTests {
    static func path(_ name: String) -> String { JPEGTests.path(name) }

    @Test func sixteenBitMaskKeepsItsValues() throws {
        #expect(try ImageCodecs.decodeMask(path: Self.path("mask16.png")).labels == [0, 1, 2, 255, 7, 8, 9, 10])
    }

    @Test func sixteenBitLabelAbove255IsRefused() {
        let path = Self.path("mask16_large.png")
        #expect { try ImageCodecs.decodeMask(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("300") }
    }

    @Test func rgbaImageDropsAlphaAndIsNotAMask() throws {
        let image = try ImageCodecs.decodeImage(path: Self.path("rgba.png"))
        #expect(image.width == 3 && image.height == 2 && image.pixels.prefix(3) == [10, 20, 30])
        let path = Self.path("rgba.png")
        #expect { try ImageCodecs.decodeMask(path: path) } throws: { "\($0)".contains(path) && "\($0)".contains("single-channel") }
    }
}
