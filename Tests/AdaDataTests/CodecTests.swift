import AdaData
import AdaTestSupport
import Foundation
import Testing

@Suite("Image codecs")
struct CodecTests {
    @Test func pngRoundTripGrayRGBAndPalette() throws {
        let gray: [UInt8] = [0, 1, 2, 255, 7, 9]
        let g = try ImageCodecs.decodeMask(data: ImageCodecs.encodePNG(pixels: gray, width: 3, height: 2, kind: .gray), name: "g")
        #expect(g == LabelMask(width: 3, height: 2, labels: gray))
        let rgb: [UInt8] = (0..<18).map { UInt8($0 * 13) }
        let c = try ImageCodecs.decodeImage(data: ImageCodecs.encodePNG(pixels: rgb, width: 3, height: 2, kind: .rgb), name: "c")
        #expect(c == RGBImage(width: 3, height: 2, pixels: rgb))
        // A palette mask decodes to its indices, not its colours.
        let indices: [UInt8] = [0, 1, 2, 1, 0, 2]
        let palette: [(UInt8, UInt8, UInt8)] = [(10, 20, 30), (200, 0, 0), (0, 0, 250)]
        let png = try ImageCodecs.encodePNG(pixels: indices, width: 3, height: 2, kind: .palette(palette))
        #expect(try ImageCodecs.decodeMask(data: png, name: "p").labels == indices)
        #expect(try ImageCodecs.decodeImage(data: png, name: "p").pixels.prefix(6) == [10, 20, 30, 200, 0, 0])
    }

    @Test func realCamVidFilesDecode() throws {
        let root = Fixtures.root + "/../data/camvid"
        let image = try ImageCodecs.decodeImage(path: root + "/images/train/0001TP_006690.jpg")
        let mask = try ImageCodecs.decodeMask(path: root + "/masks/train/0001TP_006690.png")
        #expect(image.width == 480 && image.height == 360 && mask.width == 480 && mask.height == 360)
        #expect(mask.labels.allSatisfy { $0 <= 10 || $0 == 255 })
    }

    @Test func truncatedAndCorruptFilesNameTheFile() throws {
        let dir = Fixtures.temporaryDirectory()
        let root = Fixtures.root + "/../data/camvid"
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: root + "/images/train/0001TP_006690.jpg"))
        let png = try ImageCodecs.encodePNG(pixels: [UInt8](repeating: 3, count: 64 * 64), width: 64, height: 64, kind: .gray)
        let cases: [(String, Data)] = [
            ("truncated.jpg", jpeg.prefix(jpeg.count / 2)), ("truncated.png", png.prefix(png.count - 20)),
            ("empty.png", Data()), ("text.png", Data("hello, not an image".utf8)),
            ("garbage.jpg", Data([0xFF, 0xD8] + (0..<500).map { UInt8($0 % 251) })),
        ]
        for (name, bytes) in cases {
            let path = dir.appendingPathComponent(name).path
            try bytes.write(to: URL(fileURLWithPath: path))
            #expect(throws: ImageCodecError.self) { try ImageCodecs.decodeImage(path: path) }
            do { _ = try ImageCodecs.decodeImage(path: path) } catch { #expect("\(error)".contains(path), "\(error)") }
        }
    }
}
