// DataLoader: determinism across seeds / worker counts, per-epoch shuffling, dropLast, resume, error
// propagation, bounded prefetch, HWC → NCHW conversion, one-pass evaluation and clean shutdown.
//
// Legend: B = batch size, N = samples, W×H = sample size. Sources and transforms here are small local
// stand-ins built in memory (one test decodes PNGs written to a temporary folder).
import AdaData
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

// MARK: - Stand-ins

/// Sample i: a W×H RGB image with pixel (y, x, c) = i·1000 + (y·W + x)·3 + c, labels (i + y + x) % 11.
/// Counts `sample(at:)` calls; optionally throws at one index and sleeps per sample.
private final class SyntheticSource: SampleSource, @unchecked Sendable {
    let count: Int
    let sizes: @Sendable (Int) -> (width: Int, height: Int)
    let failingIndex: Int?
    let delay: TimeInterval
    private let lock = NSLock()
    private var callCount = 0

    init(count: Int, width: Int = 6, height: Int = 5, failingIndex: Int? = nil, delay: TimeInterval = 0) {
        self.count = count
        sizes = { _ in (width, height) }
        self.failingIndex = failingIndex
        self.delay = delay
    }

    init(count: Int, sizes: @escaping @Sendable (Int) -> (width: Int, height: Int)) {
        self.count = count
        self.sizes = sizes
        failingIndex = nil
        delay = 0
    }

    var calls: Int {
        lock.lock()
        defer { lock.unlock() }
        return callCount
    }

    func sample(at index: Int) throws -> Sample {
        lock.lock()
        callCount += 1
        lock.unlock()
        if delay > 0 { Thread.sleep(forTimeInterval: delay) }
        if index == failingIndex { throw ImageCodecError.corrupt(file: "sample\(index).png", reason: "synthetic failure") }
        let (width, height) = sizes(index)
        var pixels = [Float](repeating: 0, count: width * height * 3)
        var labels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 { pixels[(y * width + x) * 3 + c] = Float(index * 1000 + (y * width + x) * 3 + c) }
                labels[y * width + x] = UInt8((index + y + x) % 11)
            }
        }
        return Sample(image: ImageBuffer(width: width, height: height, pixels: pixels),
                      mask: LabelMask(width: width, height: height, labels: labels), name: "s\(index)")
    }
}

/// Random crop to `width`×`height` plus a random brightness shift: every random draw comes from the
/// sample's generator, so batches show whether the loader seeds them deterministically.
private struct JitterCrop: Transform {
    var width = 4, height = 3

    func apply(_ sample: inout Sample, generator: inout RandomGenerator) throws {
        let image = sample.image, mask = sample.mask!
        let left = generator.int(below: image.width - width + 1), top = generator.int(below: image.height - height + 1)
        let shift = generator.uniform(0, 10)
        var pixels = [Float](repeating: 0, count: width * height * 3)
        var labels = [UInt8](repeating: 0, count: width * height)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 { pixels[(y * width + x) * 3 + c] = image.pixels[((top + y) * image.width + left + x) * 3 + c] + shift }
                labels[y * width + x] = mask.labels[(top + y) * mask.width + left + x]
            }
        }
        sample.image = ImageBuffer(width: width, height: height, pixels: pixels)
        sample.mask = LabelMask(width: width, height: height, labels: labels)
    }
}

/// STAND-IN for the real dataset: decodes a list of image / mask paths.
private struct PathListSource: SampleSource {
    let images: [String]
    let masks: [String]
    var count: Int { images.count }

    func sample(at index: Int) throws -> Sample {
        let image = try ImageCodecs.decodeImage(path: images[index])
        let mask = try ImageCodecs.decodeMask(path: masks[index])
        return Sample(image: ImageBuffer(image), mask: mask, name: URL(fileURLWithPath: images[index]).deletingPathExtension().lastPathComponent)
    }
}

/// A batch as plain values, for comparisons.
private struct BatchSnapshot: Equatable {
    let shape: [Int]
    let images: [Float]
    let labels: [Int32]
    let names: [String]

    init(_ batch: Batch) {
        shape = batch.images.shape
        images = batch.images.values
        labels = batch.labels
        names = batch.names
    }
}

private func take(_ count: Int, from loader: DataLoader) throws -> [BatchSnapshot] {
    try (0..<count).map { _ in BatchSnapshot(try loader.next()) }
}

/// Polls `condition` for up to `seconds`.
private func waitUntil(seconds: Double = 5, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.005)
    }
    return condition()
}

// MARK: - Tests

// Serialized: the shutdown test counts live worker threads process-wide.
@Suite("Data loader", .serialized)
struct LoaderTests {
    @Test func sameSeedGivesIdenticalBatchesWhateverTheWorkerCount() throws {
        let source = SyntheticSource(count: 10)
        func batches(seed: UInt64, workers: Int, prefetch: Int = 2) throws -> [BatchSnapshot] {
            let loader = DataLoader(source: source, transforms: [JitterCrop()], batchSize: 3, seed: seed,
                                    workers: workers, prefetch: prefetch)
            return try take(7, from: loader) // 3 batches per epoch: crosses two epoch boundaries
        }
        let reference = try batches(seed: 7, workers: 2)
        #expect(try batches(seed: 7, workers: 2) == reference)
        #expect(try batches(seed: 7, workers: 1) == reference)
        #expect(try batches(seed: 7, workers: 3, prefetch: 1) == reference)
        let other = try batches(seed: 8, workers: 2)
        #expect(other != reference)
        #expect(other.map(\.names) != reference.map(\.names), "a different seed should change the order")
        #expect(other.map(\.images) != reference.map(\.images))
        #expect(reference.allSatisfy { $0.shape == [3, 3, 3, 4] })
    }

    @Test func eachSampleIsAugmentedWithTheGeneratorOfItsEpochAndPosition() throws {
        // Rebuild every delivered sample by hand: order(epoch)[position] through JitterCrop seeded with
        // sampleGenerator(seed, epoch, position) — independent of thread count and of the sample index.
        let source = SyntheticSource(count: 5)
        let loader = DataLoader(source: source, transforms: [JitterCrop()], batchSize: 2, shuffle: true, seed: 3,
                                workers: 2)
        for epoch in 0..<3 {
            let order = loader.order(epoch: epoch)
            for start in stride(from: 0, to: 4, by: 2) {
                let batch = BatchSnapshot(try loader.next())
                for slot in 0..<2 {
                    var sample = try source.sample(at: order[start + slot])
                    var generator = DataLoader.sampleGenerator(seed: 3, epoch: epoch, position: start + slot)
                    try JitterCrop().apply(&sample, generator: &generator)
                    let plane = 3 * 4
                    let expected = (0..<3).flatMap { c in (0..<plane).map { p in sample.image.pixels[p * 3 + c] } }
                    #expect(Array(batch.images[(slot * 3 * plane)..<((slot + 1) * 3 * plane)]) == expected,
                            "epoch \(epoch) position \(start + slot)")
                    #expect(Array(batch.labels[(slot * plane)..<((slot + 1) * plane)]) == sample.mask!.labels.map { Int32($0) })
                    #expect(batch.names[slot] == sample.name)
                }
            }
        }
        var g1 = DataLoader.sampleGenerator(seed: 3, epoch: 0, position: 1)
        var g2 = DataLoader.sampleGenerator(seed: 3, epoch: 0, position: 1)
        var g3 = DataLoader.sampleGenerator(seed: 3, epoch: 1, position: 0)
        var g4 = DataLoader.sampleGenerator(seed: 3, epoch: 0, position: 2)
        let first = g1.next()
        #expect(first == g2.next())
        #expect(first != g3.next() && first != g4.next())
    }

    @Test func shuffleIsAPermutationPerEpochAndDiffersBetweenEpochs() throws {
        let loader = DataLoader(source: SyntheticSource(count: 12), batchSize: 4, shuffle: true, seed: 11, workers: 2)
        let epoch0 = loader.order(epoch: 0), epoch1 = loader.order(epoch: 1)
        #expect(epoch0.sorted() == Array(0..<12))
        #expect(epoch1.sorted() == Array(0..<12))
        #expect(epoch0 != epoch1)
        #expect(epoch0 != Array(0..<12))
        // The delivered batches follow those orders.
        let names = try take(6, from: loader).flatMap(\.names)
        #expect(names == (epoch0 + epoch1).map { "s\($0)" })
        let ordered = DataLoader(source: SyntheticSource(count: 12), batchSize: 4, shuffle: false, workers: 1)
        #expect(ordered.order(epoch: 5) == Array(0..<12))
    }

    @Test func dropLastDropsOrKeepsThePartialBatch() throws {
        let source = SyntheticSource(count: 10)
        let dropping = DataLoader(source: source, batchSize: 4, shuffle: false, dropLast: true, workers: 2)
        #expect(dropping.batchesPerEpoch == 2)
        #expect(try take(3, from: dropping).map(\.names) == [
            ["s0", "s1", "s2", "s3"], ["s4", "s5", "s6", "s7"], ["s0", "s1", "s2", "s3"]])
        #expect(dropping.position == LoaderPosition(epoch: 1, index: 4))

        let keeping = DataLoader(source: source, batchSize: 4, shuffle: false, dropLast: false, workers: 2)
        #expect(keeping.batchesPerEpoch == 3)
        let batches = try take(4, from: keeping)
        #expect(batches.map(\.names) == [
            ["s0", "s1", "s2", "s3"], ["s4", "s5", "s6", "s7"], ["s8", "s9"], ["s0", "s1", "s2", "s3"]])
        #expect(batches[2].shape == [2, 3, 5, 6])
        #expect(batches[2].labels.count == 2 * 5 * 6)
    }

    @Test func resumeFromAPositionRepeatsTheUninterruptedRun() throws {
        let source = SyntheticSource(count: 10)
        func loader(_ start: LoaderPosition = LoaderPosition(epoch: 0, index: 0), workers: Int = 2) -> DataLoader {
            DataLoader(source: source, transforms: [JitterCrop()], batchSize: 3, shuffle: true, seed: 5,
                       workers: workers, startEpoch: start.epoch, startIndex: start.index)
        }
        let uninterrupted = loader()
        var batches: [BatchSnapshot] = [], positions: [LoaderPosition] = []
        for _ in 0..<9 {
            batches.append(BatchSnapshot(try uninterrupted.next()))
            positions.append(uninterrupted.position)
        }
        // 3 batches per epoch; after the 4th batch (epoch 1, first batch) the position is (1, 3).
        #expect(positions[3] == LoaderPosition(epoch: 1, index: 3))
        #expect(positions[4] == LoaderPosition(epoch: 1, index: 6))
        #expect(positions[5] == LoaderPosition(epoch: 2, index: 0), "9 of 10 samples used: the partial batch is dropped")
        let resumed = loader(positions[3], workers: 1)
        #expect(resumed.position == LoaderPosition(epoch: 1, index: 3))
        #expect(try take(5, from: resumed) == Array(batches[4..<9]))
        // A position at an epoch's dropped tail is the start of the next epoch.
        let atTail = loader(LoaderPosition(epoch: 1, index: 9))
        #expect(atTail.position == LoaderPosition(epoch: 2, index: 0))
        #expect(try take(1, from: atTail) == [batches[6]])
    }

    @Test func aWorkerErrorIsRethrownFromNext() throws {
        for workers in [1, 2] {
            let loader = DataLoader(source: SyntheticSource(count: 8, failingIndex: 3), batchSize: 2, shuffle: false,
                                    workers: workers, prefetch: 3)
            #expect(try loader.next().names == ["s0", "s1"])
            let expected = ImageCodecError.corrupt(file: "sample3.png", reason: "synthetic failure")
            #expect(throws: expected) { try loader.next() }
            // The loader stays failed (and its threads are gone) instead of skipping the bad batch.
            #expect(throws: expected) { try loader.next() }
        }
        // One-pass iteration reports the error too.
        let pass = DataLoader(source: SyntheticSource(count: 5, failingIndex: 4), batchSize: 1, shuffle: false,
                              dropLast: false, workers: 2).epoch(0)
        var seen = 0
        #expect(throws: ImageCodecError.self) { try pass.forEach { _ in seen += 1 } }
        #expect(seen == 4)
    }

    @Test func prefetchIsBounded() throws {
        let source = SyntheticSource(count: 40)
        let loader = DataLoader(source: source, batchSize: 2, shuffle: false, workers: 3, prefetch: 2)
        loader.start()
        #expect(waitUntil { source.calls == 4 }, "workers should fill the 2 prefetch slots (\(source.calls) samples)")
        Thread.sleep(forTimeInterval: 0.15)
        #expect(source.calls == 4, "no more than prefetch · B samples decoded ahead")
        for consumed in 1...3 {
            _ = try loader.next()
            #expect(waitUntil { source.calls == (consumed + 2) * 2 })
            Thread.sleep(forTimeInterval: 0.1)
            #expect(source.calls == (consumed + 2) * 2, "after \(consumed) batches taken: \(source.calls) samples")
        }
    }

    @Test func channelsLastBecomesNCHWByHand() throws {
        // Two 2×1 images (W = 2, H = 1): pixel (x, c) of sample i = i·1000 + 3x + c.
        let loader = DataLoader(source: SyntheticSource(count: 2, width: 2, height: 1), batchSize: 2, shuffle: false,
                                workers: 2)
        let batch = try loader.next()
        #expect(batch.images.shape == [2, 3, 1, 2])
        #expect(batch.images.values == [
            0, 3, 1, 4, 2, 5,                   // sample 0: R plane, G plane, B plane
            1000, 1003, 1001, 1004, 1002, 1005, // sample 1
        ])
        #expect(batch.labels == [0, 1, 1, 2]) // (i + y + x) % 11
        #expect(batch.names == ["s0", "s1"])
    }

    @Test func onePassVisitsEachSampleOnceWithVariableSizes() throws {
        let source = SyntheticSource(count: 5) { i in (width: 3 + i, height: 2 + (i % 2)) }
        let loader = DataLoader(source: source, batchSize: 1, shuffle: false, dropLast: false, workers: 2)
        for _ in 0..<2 { // passes are independent and repeatable
            let pass = loader.epoch(0)
            var shapes: [[Int]] = [], names: [String] = []
            while let batch = try pass.next() {
                shapes.append(batch.images.shape)
                names.append(contentsOf: batch.names)
                #expect(batch.labels.count == batch.images.count / 3)
            }
            #expect(names == ["s0", "s1", "s2", "s3", "s4"])
            #expect(shapes == [[1, 3, 2, 3], [1, 3, 3, 4], [1, 3, 2, 5], [1, 3, 3, 6], [1, 3, 2, 7]])
            #expect(try pass.next() == nil)
        }
        // A batched pass keeps the last partial batch.
        var sizes: [Int] = []
        try DataLoader(source: SyntheticSource(count: 5), batchSize: 2, shuffle: false, dropLast: false, workers: 2)
            .epoch(3).forEach { sizes.append($0.names.count) }
        #expect(sizes == [2, 2, 1])
    }

    @Test(.timeLimit(.minutes(1)))
    func droppingLoadersMidEpochJoinsTheirThreads() throws {
        let before = DataLoader.liveWorkerThreads
        for round in 0..<20 {
            let source = SyntheticSource(count: 50, delay: 0.002)
            let loader = DataLoader(source: source, batchSize: 4, workers: 2, prefetch: 3, startIndex: round % 7)
            _ = try loader.next()
            if round % 2 == 0 { loader.stop() } // half stopped explicitly, half only dropped
            if round % 4 == 0 { #expect(throws: DataLoaderError.stopped) { try loader.next() } }
        }
        for _ in 0..<5 { _ = DataLoader(source: SyntheticSource(count: 8), batchSize: 2, workers: 2) } // never started
        _ = try DataLoader(source: SyntheticSource(count: 8), batchSize: 2, workers: 2).epoch(0).next() // pass dropped early
        // The census is process-wide and tests of other suites run loaders concurrently: wait (bounded) for
        // the count to fall back to where it started rather than comparing one instant.
        var live = DataLoader.liveWorkerThreads
        for _ in 0..<200 where live > before {
            Thread.sleep(forTimeInterval: 0.05)
            live = DataLoader.liveWorkerThreads
        }
        #expect(live <= before, "every worker thread has exited (\(live) live, \(before) before)")
    }

    @Test func decodesImageAndMaskFilesThroughTheLoader() throws {
        let directory = Fixtures.temporaryDirectory()
        var images: [String] = [], masks: [String] = []
        for i in 0..<3 {
            let rgb = (0..<(4 * 2 * 3)).map { UInt8((i * 50 + $0) % 256) }
            let labels = (0..<(4 * 2)).map { UInt8($0 == 0 ? 255 : (i + $0) % 4) }
            let imagePath = directory.appendingPathComponent("img\(i).png").path
            let maskPath = directory.appendingPathComponent("img\(i)_mask.png").path
            try ImageCodecs.encodePNG(pixels: rgb, width: 4, height: 2, kind: .rgb).write(to: URL(fileURLWithPath: imagePath))
            try ImageCodecs.encodePNG(pixels: labels, width: 4, height: 2, kind: .gray).write(to: URL(fileURLWithPath: maskPath))
            images.append(imagePath)
            masks.append(maskPath)
        }
        let loader = DataLoader(source: PathListSource(images: images, masks: masks), batchSize: 3, shuffle: false,
                                workers: 2)
        let batch = try loader.next()
        #expect(batch.names == ["img0", "img1", "img2"])
        #expect(batch.images.shape == [3, 3, 2, 4])
        // Sample 1, channel 2 (blue), pixel (y 1, x 3) = byte (1·4 + 3)·3 + 2 = 23 of image 1 → 50 + 23.
        #expect(batch.images.values[1 * 24 + 2 * 8 + 1 * 4 + 3] == 73)
        #expect(batch.labels[0] == 255 && batch.labels[8] == 255 && batch.labels[9] == 2)

        let missing = directory.appendingPathComponent("missing.png").path
        let broken = DataLoader(source: PathListSource(images: [images[0], missing], masks: [masks[0], masks[1]]),
                                batchSize: 2, shuffle: false, workers: 2)
        do {
            _ = try broken.next()
            Issue.record("a missing file should throw")
        } catch let error as ImageCodecError {
            #expect(error.file == missing, "\(error)")
        }
    }

    @Test func mismatchedSizesInABatchStopWithAMessageNamingTheSample() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let source = SyntheticSource(count: 4) { i in (width: i == 2 ? 7 : 6, height: 5) }
            let loader = DataLoader(source: source, batchSize: 4, shuffle: false, workers: 1)
            _ = try? loader.next()
        }
        let message = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(message.contains("sample 's2' is 7×5×3"), "\(message.prefix(400))")
    }
}
