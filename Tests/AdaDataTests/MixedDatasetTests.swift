import AdaData
import AdaTensor
import Testing

/// `count` 2×2 samples whose pixel value and name identify (dataset, index).
private struct TaggedSource: SampleSource {
    let tag: Int
    let count: Int

    func sample(at index: Int) throws -> Sample {
        Sample(image: ImageBuffer(width: 2, height: 2, fill: Float(100 * tag + index)),
               mask: LabelMask(width: 2, height: 2, labels: [0, 1, 0, 1]), name: "d\(tag)-\(index)")
    }
}

/// Adds `amount` to every pixel (tells the pipelines apart).
private struct Shift: Transform {
    let amount: Float
    func apply(_ sample: inout Sample, generator: inout RandomGenerator) throws {
        sample.image.pixels = sample.image.pixels.map { $0 + amount }
    }
}

@Suite("Mixed datasets")
struct MixedDatasetTests {
    @Test(arguments: [([1.0, 1.0], [10, 3]), ([3.0, 1.0], [10, 3]), ([1.0, 4.0], [5, 7]), ([0.2, 0.3, 0.5], [4, 9, 2])])
    func everySampleAppearsAndSlotsFollowTheWeights(weights: [Double], sizes: [Int]) throws {
        let mixed = MixedSource(sources: sizes.enumerated().map { TaggedSource(tag: $0, count: $1) }, weights: weights)
        #expect(mixed.slots.count == sizes.count && mixed.count == mixed.slots.reduce(0, +))
        var seen = sizes.map { Array(repeating: 0, count: $0) }
        for i in 0..<mixed.count {
            let sample = try mixed.sample(at: i)
            let (task, index) = mixed.locate(i)
            #expect(sample.task == task && sample.name == "d\(task)-\(index)")
            seen[task][index] += 1
        }
        let total = weights.reduce(0, +)
        for (task, counts) in seen.enumerated() {
            #expect(counts.allSatisfy { $0 >= 1 }, "dataset \(task) has unseen samples: \(counts)")
            #expect(counts.max()! - counts.min()! <= 1, "dataset \(task) repeats unevenly: \(counts)")
            // Slots follow the weights up to rounding (half a slot per dataset).
            let expected = Double(mixed.count) * weights[task] / total
            #expect(abs(Double(mixed.slots[task]) - expected) <= 0.5 + 0.5 * Double(sizes.count), "slots \(mixed.slots) for weights \(weights)")
        }
    }

    @Test func loaderBatchesCarryTaskIdsAndEachTaskKeepsItsPipeline() throws {
        let mixed = MixedSource(sources: [TaggedSource(tag: 0, count: 6), TaggedSource(tag: 1, count: 2)], weights: [1, 1])
        let pipelines = PerTaskTransforms([[Shift(amount: 0.5)], [Shift(amount: 0.25)]])
        let loader = DataLoader(source: mixed, transforms: [pipelines], batchSize: 4, shuffle: true, seed: 3, workers: 2)
        defer { loader.stop() }
        var tasksSeen = Set<Int>(), mixedBatch = false
        for _ in 0..<(2 * loader.batchesPerEpoch) {
            let batch = try loader.next()
            #expect(batch.tasks.count == 4)
            mixedBatch = mixedBatch || Set(batch.tasks).count > 1
            for (slot, task) in batch.tasks.enumerated() {
                tasksSeen.insert(task)
                #expect(batch.names[slot].hasPrefix("d\(task)-"))
                let value = batch.images.data[slot * 3 * 4] // channel 0, pixel 0 of this sample
                #expect(value - value.rounded(.down) == (task == 0 ? 0.5 : 0.25), "sample \(batch.names[slot]) got the other pipeline")
            }
        }
        #expect(tasksSeen == [0, 1] && mixedBatch)
        // Same seed, same order (resumable like any source).
        let again = DataLoader(source: mixed, transforms: [pipelines], batchSize: 4, shuffle: true, seed: 3, workers: 1)
        defer { again.stop() }
        #expect(again.order(epoch: 1) == loader.order(epoch: 1))
    }
}
