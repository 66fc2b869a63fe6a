// `adaroute bench data`: images/s through decode + augment + batch (DataLoader) on a dataset folder,
// with 1 and all threads. The consumer does no work, so this is the pipeline's ceiling.
//
// Legend: B = batch size, K = timed batches, crop = side of the square training crop.
//
// The seam: `DataBenchmark.run` takes any `SampleSource` and `[Transform]`. The folder source and the
// crop transform below are STAND-INS (marked `StandIn…`) until the real SegmentationDataset and the mmseg
// pipeline are merged; only `DataBenchmark.pipeline(root:split:crop:)` needs to change then.
import AdaData
import AdaTensor
import Foundation

public struct DataBenchmarkRow: Sendable {
    public let threads: Int
    public let batches: Int
    public let images: Int
    public let seconds: Double
    public var imagesPerSecond: Double { Double(images) / seconds }
    public var millisecondsPerBatch: Double { 1000 * seconds / Double(batches) }
}

public enum DataBenchmark {
    /// The source and transforms the benchmark measures (stand-ins for now, see the header).
    public static func pipeline(root: String, split: String, crop: Int) throws -> (any SampleSource, [any Transform]) {
        let source = try StandInFolderSource(root: root, split: split)
        return (source, [StandInRandomCropPad(size: crop)])
    }

    /// Times `batches` batches of `batchSize` from a fresh loader with `threads` workers (and as many
    /// kernel threads), from creation to the last batch (pipeline fill included).
    public static func run(source: any SampleSource, transforms: [any Transform], batchSize: Int, threads: Int,
                           batches: Int, seed: UInt64 = 0) throws -> DataBenchmarkRow {
        precondition(batches >= 1, "bench data: batches must be ≥ 1, got \(batches)")
        let previousThreads = Runtime.threads
        Runtime.setThreads(threads)
        defer { Runtime.setThreads(previousThreads) }
        let start = Stopwatch.now()
        let loader = DataLoader(source: source, transforms: transforms, batchSize: batchSize, shuffle: true,
                                dropLast: true, seed: seed, workers: threads)
        var images = 0
        for _ in 0..<batches { images += try loader.next().names.count }
        let seconds = Stopwatch.now() - start
        loader.stop()
        return DataBenchmarkRow(threads: threads, batches: batches, images: images, seconds: seconds)
    }
}

// MARK: - Stand-ins (replaced by SegmentationDataset and the mmseg transforms at merge time)

/// STAND-IN dataset: `root/images/<split>/*.{jpg,png}` with masks `root/masks/<split>/<stem>.png`.
public struct StandInFolderSource: SampleSource {
    public let imagePaths: [String]
    public let maskPaths: [String]

    public init(root: String, split: String) throws {
        let imageDirectory = (root as NSString).appendingPathComponent("images/\(split)")
        let maskDirectory = (root as NSString).appendingPathComponent("masks/\(split)")
        let files: [String]
        do { files = try FileManager.default.contentsOfDirectory(atPath: imageDirectory) } catch {
            throw ImageCodecError.unreadable(file: imageDirectory, reason: "cannot list the image folder (pass --root)")
        }
        let images = files.filter { $0.hasSuffix(".jpg") || $0.hasSuffix(".jpeg") || $0.hasSuffix(".png") }.sorted()
        guard !images.isEmpty else {
            throw ImageCodecError.unreadable(file: imageDirectory, reason: "no .jpg or .png images")
        }
        imagePaths = images.map { (imageDirectory as NSString).appendingPathComponent($0) }
        maskPaths = images.map {
            (maskDirectory as NSString).appendingPathComponent((($0 as NSString).deletingPathExtension) + ".png")
        }
    }

    public var count: Int { imagePaths.count }

    public func sample(at index: Int) throws -> Sample {
        let image = try ImageCodecs.decodeImage(path: imagePaths[index])
        let mask = try ImageCodecs.decodeMask(path: maskPaths[index])
        let name = ((imagePaths[index] as NSString).lastPathComponent as NSString).deletingPathExtension
        return Sample(image: ImageBuffer(image), mask: mask, name: name)
    }
}

/// STAND-IN augmentation: a random `size`×`size` crop (the whole side when smaller), padded to
/// `size` with 0 (image) and 255 (mask, ignore), then a random horizontal flip.
public struct StandInRandomCropPad: Transform {
    public let size: Int

    public init(size: Int) {
        precondition(size >= 1, "crop size must be ≥ 1, got \(size)")
        self.size = size
    }

    public func apply(_ sample: inout Sample, generator: inout RandomGenerator) throws {
        let image = sample.image, c = image.channels
        let cropWidth = min(size, image.width), cropHeight = min(size, image.height)
        let left = generator.int(below: image.width - cropWidth + 1)
        let top = generator.int(below: image.height - cropHeight + 1)
        let flip = generator.nextFloat() < 0.5
        var pixels = [Float](repeating: 0, count: size * size * c)
        var labels = [UInt8](repeating: 255, count: size * size)
        image.pixels.withUnsafeBufferPointer { source in
            pixels.withUnsafeMutableBufferPointer { out in
                for y in 0..<cropHeight {
                    for x in 0..<cropWidth {
                        let sx = flip ? left + cropWidth - 1 - x : left + x
                        let from = ((top + y) * image.width + sx) * c, to = (y * size + x) * c
                        for k in 0..<c { out[to + k] = source[from + k] }
                    }
                }
            }
        }
        if let mask = sample.mask {
            for y in 0..<cropHeight {
                for x in 0..<cropWidth {
                    let sx = flip ? left + cropWidth - 1 - x : left + x
                    labels[y * size + x] = mask.labels[(top + y) * mask.width + sx]
                }
            }
            sample.mask = LabelMask(width: size, height: size, labels: labels)
        }
        sample.image = ImageBuffer(width: size, height: size, channels: c, pixels: pixels)
    }
}
