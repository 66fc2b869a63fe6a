// DataLoader: batches of samples from a SampleSource through [Transform], decoded and augmented on
// background worker threads while the model computes.
//
// Legend: B = batch size, C = channels (3), H×W = sample size after the transforms, N = samples in
// the source, e = epoch, position = index within an epoch's sample order (0..<N).
//
// Determinism: the sample order of epoch e comes from a generator seeded with (seed, e); the sample
// at position p of epoch e is augmented with a generator seeded with (seed, e, p). No RNG is shared
// between threads, so batches depend neither on `workers` nor on timing, and a loader started at
// (epoch, index) yields exactly what an uninterrupted run yielded from there.
//
// Threads: `workers` threads claim (batch, slot) work units in order; each decodes + augments one
// sample and writes it straight into its batch's NCHW tensor. At most `prefetch` batches (in progress
// or ready) exist ahead of the consumer, so memory stays bounded. A worker error is stored with its
// batch and re-thrown from `next()` when the consumer reaches that batch.
import AdaTensor
import Foundation

public enum DataLoaderError: Error, CustomStringConvertible, Equatable {
    /// `next()` after `stop()`.
    case stopped

    public var description: String {
        switch self {
        case .stopped: return "data loader: next() called after stop()"
        }
    }
}

/// Where a loader stands: the epoch and the position within that epoch's sample order of the next
/// sample to be delivered. Checkpoint it and pass it back as `startEpoch` / `startIndex`.
public struct LoaderPosition: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var epoch: Int
    public var index: Int

    public init(epoch: Int, index: Int) {
        self.epoch = epoch
        self.index = index
    }

    public var description: String { "epoch \(epoch), sample \(index)" }
}

public final class DataLoader {
    public let source: any SampleSource
    public let transforms: [any Transform]
    public let batchSize: Int
    public let shuffle: Bool
    /// Drop an epoch's last batch when it would hold fewer than `batchSize` samples.
    public let dropLast: Bool
    public let seed: UInt64
    /// Decode + augment threads.
    public let workers: Int
    /// Batches (in progress or ready) allowed ahead of the consumer.
    public let prefetch: Int
    /// The next sample `next()` delivers (normalised: never past an epoch's last batch).
    public private(set) var position: LoaderPosition

    private let plan: BatchPlan
    private var producer: BatchProducer?
    private var stopped = false

    /// - Parameters:
    ///   - startEpoch, startIndex: resume position (from `position` of a previous run).
    public init(source: any SampleSource, transforms: [any Transform] = [], batchSize: Int, shuffle: Bool = true,
                dropLast: Bool = true, seed: UInt64 = 0, workers: Int = Runtime.threads, prefetch: Int = 2,
                startEpoch: Int = 0, startIndex: Int = 0) {
        let count = source.count
        precondition(batchSize >= 1, "DataLoader: batchSize must be ≥ 1, got \(batchSize)")
        precondition(workers >= 1, "DataLoader: workers must be ≥ 1, got \(workers)")
        precondition(prefetch >= 1, "DataLoader: prefetch must be ≥ 1, got \(prefetch)")
        precondition(count > 0, "DataLoader: the source has no samples")
        precondition(!dropLast || count >= batchSize,
                     "DataLoader: \(count) samples < batchSize \(batchSize) with dropLast: no batch would ever be produced")
        precondition(startEpoch >= 0 && startIndex >= 0 && startIndex <= count,
                     "DataLoader: start position (epoch \(startEpoch), index \(startIndex)) outside 0…\(count)")
        self.source = source
        self.transforms = transforms
        self.batchSize = batchSize
        self.shuffle = shuffle
        self.dropLast = dropLast
        self.seed = seed
        self.workers = workers
        self.prefetch = prefetch
        plan = BatchPlan(source: source, transforms: transforms, count: count, batchSize: batchSize,
                         shuffle: shuffle, dropLast: dropLast, seed: seed)
        position = plan.normalized(LoaderPosition(epoch: startEpoch, index: startIndex))
    }

    deinit { producer?.stop() }

    /// Batches per epoch (the last one partial when !dropLast and batchSize does not divide N).
    public var batchesPerEpoch: Int {
        let count = plan.count
        return dropLast ? count / batchSize : (count + batchSize - 1) / batchSize
    }

    /// Starts the worker threads now (otherwise the first `next()` does), so decoding overlaps setup.
    public func start() {
        guard producer == nil, !stopped else { return }
        let producer = BatchProducer(plan: plan, start: position, endEpoch: nil, workers: workers, prefetch: prefetch)
        producer.start()
        self.producer = producer
    }

    /// The next training batch; epochs follow each other without end. Throws the error of a sample
    /// that failed to decode or transform (and keeps throwing it), or `DataLoaderError.stopped`.
    public func next() throws -> Batch {
        if stopped { throw DataLoaderError.stopped }
        start()
        // The training stream has no end epoch, so the producer never runs out.
        guard let delivered = try producer!.next() else { preconditionFailure("DataLoader: endless stream ended") }
        position = plan.normalized(LoaderPosition(epoch: delivered.epoch, index: delivered.start + delivered.count))
        return delivered.batch
    }

    /// Stops and joins the worker threads (each finishes the sample it is on); later `next()` calls
    /// throw `DataLoaderError.stopped`. Called by deinit.
    public func stop() {
        stopped = true
        producer?.stop()
    }

    /// One pass over epoch `epoch` (evaluation), with this loader's order, batch size and transforms,
    /// on its own worker threads; independent of the training stream. With batchSize 1 samples may
    /// differ in size.
    public func epoch(_ epoch: Int = 0) -> EpochPass {
        precondition(epoch >= 0, "DataLoader.epoch: negative epoch \(epoch)")
        return EpochPass(producer: BatchProducer(plan: plan, start: LoaderPosition(epoch: epoch, index: 0),
                                                 endEpoch: epoch + 1, workers: workers, prefetch: prefetch))
    }

    /// The sample indices of epoch `epoch` in delivery order (a seeded permutation when shuffling).
    public func order(epoch: Int) -> [Int] { plan.order(epoch: epoch) }

    /// The generator that orders epoch `epoch`.
    public static func orderGenerator(seed: UInt64, epoch: Int) -> RandomGenerator {
        RandomGenerator(seed: mixSeed(seed, 0x4F52_4445_5253, UInt64(bitPattern: Int64(epoch))))
    }

    /// The generator that augments the sample at `position` of epoch `epoch`.
    public static func sampleGenerator(seed: UInt64, epoch: Int, position: Int) -> RandomGenerator {
        RandomGenerator(seed: mixSeed(seed, 0x4155_474D_454E, UInt64(bitPattern: Int64(epoch)),
                                      UInt64(bitPattern: Int64(position))))
    }

    /// Worker threads alive in this process across all loaders (for shutdown checks).
    public static var liveWorkerThreads: Int { WorkerCensus.shared.count }

    /// SplitMix64 finaliser chained over the words: distinct tuples give unrelated seeds.
    static func mixSeed(_ words: UInt64...) -> UInt64 {
        var hash: UInt64 = 0x243F_6A88_85A3_08D3
        for word in words {
            var z = (hash ^ word) &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            hash = z ^ (z >> 31)
        }
        return hash
    }
}

/// One pass over an epoch: `while let batch = try pass.next() { … }` or `try pass.forEach { … }`.
public final class EpochPass {
    private let producer: BatchProducer
    private var started = false

    init(producer: BatchProducer) { self.producer = producer }

    deinit { producer.stop() }

    /// The next batch, or nil after the epoch's last one.
    public func next() throws -> Batch? {
        if !started { producer.start(); started = true }
        return try producer.next()?.batch
    }

    public func forEach(_ body: (Batch) throws -> Void) throws {
        while let batch = try next() { try body(batch) }
    }

    /// Stops and joins the worker threads early.
    public func stop() { producer.stop() }
}

// MARK: - Plan: order, positions and the work on one sample (no state, shared by all threads)

struct BatchPlan: @unchecked Sendable {
    let source: any SampleSource
    let transforms: [any Transform]
    let count: Int
    let batchSize: Int
    let shuffle: Bool
    let dropLast: Bool
    let seed: UInt64

    func order(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        guard shuffle else { return order }
        var generator = DataLoader.orderGenerator(seed: seed, epoch: epoch)
        var i = count - 1
        while i > 0 { // Fisher–Yates
            order.swapAt(i, generator.int(below: i + 1))
            i -= 1
        }
        return order
    }

    /// Moves a position past an epoch's end (or past a dropped partial batch) to the next epoch.
    func normalized(_ position: LoaderPosition) -> LoaderPosition {
        let remaining = count - position.index
        if remaining <= 0 || (dropLast && remaining < batchSize) {
            return LoaderPosition(epoch: position.epoch + 1, index: 0)
        }
        return position
    }

    /// Decodes and augments sample `index` at `position` of `epoch`.
    func makeSample(index: Int, epoch: Int, position: Int) throws -> Sample {
        var sample = try source.sample(at: index)
        var generator = DataLoader.sampleGenerator(seed: seed, epoch: epoch, position: position)
        for transform in transforms { try transform.apply(&sample, generator: &generator) }
        if let mask = sample.mask, mask.width != sample.image.width || mask.height != sample.image.height {
            // fatalError, not precondition: -O builds drop precondition messages, and this one names the file.
            fatalError("DataLoader: sample '\(sample.name)' has a \(sample.image.width)×\(sample.image.height) image but a \(mask.width)×\(mask.height) mask after the transforms")
        }
        return sample
    }
}

// MARK: - One batch being filled by the workers

final class PendingBatch: @unchecked Sendable {
    let sequence: Int
    let epoch: Int
    let start: Int
    let indices: [Int]
    var count: Int { indices.count }
    /// Slots not finished yet (guarded by the producer's lock).
    var remaining: Int
    var names: [String]
    var tasks: [Int]
    /// The error of the lowest failing slot (deterministic whatever the timing).
    var error: Error?
    var errorSlot = Int.max
    /// Allocated by the first finished sample; the others must match its layout.
    var images: Tensor?
    var labels: UnsafeMutablePointer<Int32>?
    var channels = 0, height = 0, width = 0
    var firstName = ""

    init(sequence: Int, epoch: Int, start: Int, indices: [Int]) {
        self.sequence = sequence
        self.epoch = epoch
        self.start = start
        self.indices = indices
        remaining = indices.count
        names = [String](repeating: "", count: indices.count)
        tasks = [Int](repeating: 0, count: indices.count)
    }

    deinit { labels?.deallocate() }

    /// Under the producer's lock: allocates the batch for the first sample, checks the others.
    func reserve(slot: Int, for sample: Sample) {
        let image = sample.image
        if images == nil {
            channels = image.channels
            height = image.height
            width = image.width
            firstName = sample.name
            images = Tensor(uninitializedShape: [count, channels, height, width])
            labels = .allocate(capacity: count * height * width)
        } else if image.channels != channels || image.height != height || image.width != width {
            // fatalError, not precondition: -O builds drop precondition messages, and this one names the samples.
            fatalError("DataLoader: sample '\(sample.name)' is \(image.width)×\(image.height)×\(image.channels) (W×H×C) but sample '\(firstName)' of the same batch is \(width)×\(height)×\(channels); all samples of a batch must have one size (crop/pad in the transforms, or use batchSize 1)")
        }
        names[slot] = sample.name
        tasks[slot] = sample.task
    }

    /// Outside the lock: each slot writes its own disjoint region. HWC → CHW; UInt8 labels → Int32.
    func write(slot: Int, sample: Sample) {
        let plane = height * width
        let destination = images!.data + slot * channels * plane
        sample.image.pixels.withUnsafeBufferPointer { pixels in
            let source = pixels.baseAddress!
            if channels == 3 {
                let red = destination, green = destination + plane, blue = destination + 2 * plane
                for p in 0..<plane {
                    red[p] = source[3 * p]
                    green[p] = source[3 * p + 1]
                    blue[p] = source[3 * p + 2]
                }
            } else {
                for c in 0..<channels {
                    let out = destination + c * plane
                    for p in 0..<plane { out[p] = source[p * channels + c] }
                }
            }
        }
        let labelOut = labels! + slot * plane
        if let mask = sample.mask {
            mask.labels.withUnsafeBufferPointer { source in
                for p in 0..<plane { labelOut[p] = Int32(source[p]) }
            }
        } else {
            labelOut.update(repeating: 255, count: plane) // unlabelled: everything ignored
        }
    }

    func makeBatch() -> Batch {
        let total = count * height * width
        let labelArray = [Int32](unsafeUninitializedCapacity: total) { buffer, initialized in
            buffer.baseAddress!.update(from: labels!, count: total)
            initialized = total
        }
        return Batch(images: images!, labels: labelArray, names: names, tasks: tasks)
    }
}

struct DeliveredBatch {
    let batch: Batch
    let epoch: Int
    let start: Int
    let count: Int
}

// MARK: - Producer: the worker threads and the bounded queue

final class BatchProducer: @unchecked Sendable {
    private let plan: BatchPlan
    private let endEpoch: Int?
    private let workerCount: Int
    private let prefetch: Int
    /// Guards everything below; workers and the consumer wait on it.
    private let condition = NSCondition()

    private var started = false
    private var stopped = false
    private var liveWorkers = 0
    /// Next sample position to schedule, and the order of its epoch.
    private var cursor: LoaderPosition
    private var cursorOrder: [Int] = []
    private var cursorOrderEpoch = -1
    /// The batch whose slots are being handed out, and its next slot.
    private var open: PendingBatch?
    private var nextSlot = 0
    private var scheduled = 0
    private var consumed = 0
    private var pending: [Int: PendingBatch] = [:]
    /// No batch left to schedule (finite pass ended).
    private var exhausted = false
    /// Lowest batch sequence holding an error: nothing after it is scheduled.
    private var failedSequence = Int.max
    /// Delivered error: thrown again on every later call.
    private var failure: Error?

    init(plan: BatchPlan, start: LoaderPosition, endEpoch: Int?, workers: Int, prefetch: Int) {
        self.plan = plan
        self.endEpoch = endEpoch
        workerCount = workers
        self.prefetch = prefetch
        cursor = start
    }

    func start() {
        condition.lock()
        defer { condition.unlock() }
        guard !started, !stopped else { return }
        started = true
        for index in 0..<workerCount {
            liveWorkers += 1
            WorkerCensus.shared.add(1)
            let thread = Thread { [self] in workerLoop() }
            thread.name = "adaroute-data-\(index)"
            thread.stackSize = 8 << 20 // codecs and transforms may use deep C stacks
            thread.start()
        }
    }

    /// Stops scheduling, wakes everyone and waits for the workers to exit.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        while liveWorkers > 0 { condition.wait() }
        pending.removeAll()
        open = nil
        condition.unlock()
    }

    /// The next batch in sequence order, nil when a finite pass has ended.
    func next() throws -> DeliveredBatch? {
        condition.lock()
        while true {
            if let failure {
                condition.unlock()
                throw failure
            }
            if stopped {
                condition.unlock()
                throw DataLoaderError.stopped
            }
            if let batch = pending[consumed], batch.remaining == 0 {
                pending[consumed] = nil
                consumed += 1
                condition.broadcast() // a prefetch slot is free
                if let error = batch.error {
                    failure = error
                    condition.unlock()
                    stop()
                    throw error
                }
                condition.unlock()
                return DeliveredBatch(batch: batch.makeBatch(), epoch: batch.epoch, start: batch.start, count: batch.count)
            }
            if exhausted && open == nil && consumed == scheduled {
                condition.unlock()
                return nil
            }
            condition.wait()
        }
    }

    private func workerLoop() {
        condition.lock()
        while true {
            if stopped { break }
            guard let (batch, slot) = claimSlot() else {
                if exhausted && open == nil { break } // finite pass: nothing left to do
                condition.wait()
                continue
            }
            condition.unlock()
            let index = batch.indices[slot], position = batch.start + slot
            do {
                let sample = try plan.makeSample(index: index, epoch: batch.epoch, position: position)
                condition.lock()
                batch.reserve(slot: slot, for: sample)
                condition.unlock()
                batch.write(slot: slot, sample: sample)
                condition.lock()
            } catch {
                condition.lock()
                if slot < batch.errorSlot {
                    batch.error = error
                    batch.errorSlot = slot
                }
                failedSequence = min(failedSequence, batch.sequence)
            }
            batch.remaining -= 1
            if batch.remaining == 0 { condition.broadcast() }
        }
        liveWorkers -= 1
        WorkerCensus.shared.add(-1)
        condition.broadcast()
        condition.unlock()
    }

    /// Under the lock: the next (batch, slot) to work on, opening a new batch when the prefetch bound
    /// allows; nil when there is nothing to do now.
    private func claimSlot() -> (PendingBatch, Int)? {
        if open == nil {
            guard !exhausted, scheduled < consumed + prefetch, scheduled <= failedSequence else { return nil }
            guard let batch = scheduleBatch() else {
                exhausted = true
                condition.broadcast() // the consumer may be waiting for the end
                return nil
            }
            open = batch
            nextSlot = 0
        }
        let batch = open!, slot = nextSlot
        nextSlot += 1
        if nextSlot == batch.count { open = nil }
        return (batch, slot)
    }

    private func scheduleBatch() -> PendingBatch? {
        cursor = plan.normalized(cursor)
        if let endEpoch, cursor.epoch >= endEpoch { return nil }
        if cursorOrderEpoch != cursor.epoch {
            cursorOrder = plan.order(epoch: cursor.epoch)
            cursorOrderEpoch = cursor.epoch
        }
        let size = min(plan.batchSize, plan.count - cursor.index)
        let batch = PendingBatch(sequence: scheduled, epoch: cursor.epoch, start: cursor.index,
                                 indices: Array(cursorOrder[cursor.index..<(cursor.index + size)]))
        pending[scheduled] = batch
        scheduled += 1
        cursor.index += size
        return batch
    }
}

/// Counts live worker threads process-wide.
final class WorkerCensus: @unchecked Sendable {
    static let shared = WorkerCensus()
    private let lock = NSLock()
    private var value = 0

    func add(_ delta: Int) {
        lock.lock()
        value += delta
        lock.unlock()
    }

    var count: Int {
        lock.lock()
        defer { lock.unlock() }
        return value
    }
}
