// A segmentation dataset split on disk (mmseg layout, see DatasetConfig), checked once at start-up so a
// bad file stops the run before training rather than hours into it: every image needs a mask of the same
// size and vice versa, every file must be readable, and every label must be a class or the ignore value.
// Samples are then decoded on demand. An unlabelled variant (images only) serves prediction.
//
// Legend: H×W pixels; K classes; labels 0..<K, 255 = ignore (as carried in samples).
import AdaTensor
import Foundation

public final class SegmentationDataset: SampleSource {
    public struct Entry: Equatable, Sendable {
        /// File stem (without folder and suffix).
        public var name: String
        public var imagePath: String
        /// nil for unlabelled images.
        public var maskPath: String?
    }

    /// Samples ordered by stem (labelled) or as given (unlabelled).
    public let entries: [Entry]
    /// nil for an unlabelled dataset.
    public let config: DatasetConfig?
    public let split: String?
    let labels: LabelRule?

    public var count: Int { entries.count }
    public var names: [String] { entries.map(\.name) }
    public var isLabelled: Bool { labels != nil }

    /// Unlabelled images (for predict): samples have no mask; names are the file stems.
    public init(images: [String]) {
        entries = images.map { Entry(name: ((($0 as NSString).lastPathComponent) as NSString).deletingPathExtension, imagePath: $0, maskPath: nil) }
        config = nil
        split = nil
        labels = nil
    }

    init(entries: [Entry], config: DatasetConfig, split: String) {
        self.entries = entries
        self.config = config
        self.split = split
        labels = LabelRule(config)
    }

    /// Image files in one folder whose names end in one of `suffixes` (case-insensitive, hidden files
    /// skipped), sorted — e.g. to build an unlabelled dataset for predict.
    public static func imagePaths(in folder: String, suffixes: [String] = [".jpg", ".jpeg", ".png"]) throws -> [String] {
        guard DatasetConfig.isDirectory(folder) else { throw DatasetError.missingFolder(path: folder, role: "image folder") }
        let listing = try FolderListing(folder: folder, suffixes: suffixes)
        return listing.byStem.keys.sorted().flatMap { listing.byStem[$0]! }
    }

    // MARK: Samples

    public func sample(at index: Int) throws -> Sample {
        precondition(index >= 0 && index < entries.count, "SegmentationDataset.sample(at: \(index)): the dataset has \(entries.count) samples")
        let entry = entries[index]
        let image = try ImageCodecs.decodeImage(path: entry.imagePath)
        guard let maskPath = entry.maskPath, let labels else {
            return Sample(image: ImageBuffer(image), mask: nil, name: entry.name)
        }
        var mask = try ImageCodecs.decodeMask(path: maskPath)
        guard mask.width == image.width, mask.height == image.height else {
            throw DatasetError.badSample(file: maskPath, reason: "mask is \(mask.width)×\(mask.height) but its image \(entry.imagePath) is \(image.width)×\(image.height); expected the same size")
        }
        if let problem = labels.apply(to: &mask.labels) {
            throw DatasetError.badSample(file: maskPath, reason: problem + " (did the file change after indexing?)")
        }
        return Sample(image: ImageBuffer(image), mask: mask, name: entry.name)
    }

    // MARK: Indexing

    /// Pairs the split's images and masks by stem and checks every pair (in parallel): missing partners,
    /// unreadable files, mask size ≠ image size (image size from its header; masks are decoded), labels
    /// that are neither a class nor the ignore value. With problems, throws `DatasetError.badSamples`
    /// listing them, unless `skipBadSamples` is set: then the bad samples are dropped and counted in the report.
    public static func index(_ config: DatasetConfig, split: String) throws -> (SegmentationDataset, DatasetIndexReport) {
        try config.validate()
        guard !split.isEmpty else { throw DatasetError.invalidConfig(["split: empty name"]) }
        guard DatasetConfig.isDirectory(config.root) else { throw DatasetError.missingFolder(path: config.root, role: "dataset root") }
        let imageRoot = DatasetConfig.join(config.root, config.imageDir)
        guard DatasetConfig.isDirectory(imageRoot) else { throw DatasetError.missingFolder(path: imageRoot, role: "image folder (imageDir)") }
        guard let maskDir = config.resolvedMaskDir() else {
            throw DatasetError.noMaskFolder(root: config.root, tried: DatasetConfig.defaultMaskDirs)
        }
        let maskRoot = DatasetConfig.join(config.root, maskDir)
        guard DatasetConfig.isDirectory(maskRoot) else { throw DatasetError.missingFolder(path: maskRoot, role: "mask folder (mask_dir)") }
        let imageFolder = config.imageFolder(split: split)
        guard DatasetConfig.isDirectory(imageFolder) else { throw DatasetError.missingFolder(path: imageFolder, role: "image folder of split '\(split)'") }
        let maskFolder = DatasetConfig.join(maskRoot, split)
        guard DatasetConfig.isDirectory(maskFolder) else { throw DatasetError.missingFolder(path: maskFolder, role: "mask folder of split '\(split)'") }

        let images = try FolderListing(folder: imageFolder, suffixes: config.imageSuffixes)
        let masks = try FolderListing(folder: maskFolder, suffixes: [config.maskSuffix])
        guard images.fileCount > 0 else { throw DatasetError.emptySplit(folder: imageFolder, suffixes: config.imageSuffixes) }

        // Pairs with exactly one image and one mask get the file checks, in parallel (decoding masks is the cost).
        let stems = Set(images.byStem.keys).union(masks.byStem.keys).sorted()
        let pairs: [Entry] = stems.compactMap { stem in
            guard let image = images.byStem[stem], let mask = masks.byStem[stem], image.count == 1, mask.count == 1 else { return nil }
            return Entry(name: stem, imagePath: image[0], maskPath: mask[0])
        }
        let rule = LabelRule(config)
        var pairProblems = [[DatasetProblem]](repeating: [], count: pairs.count)
        pairProblems.withUnsafeMutableBufferPointer { results in
            let out = results.baseAddress!
            Parallel.forEach(pairs.count) { i in out[i] = checkPair(pairs[i], rule: rule) }
        }
        let problemsByStem = Dictionary(uniqueKeysWithValues: zip(pairs.map(\.name), pairProblems))

        var usable: [Entry] = []
        var problems: [DatasetProblem] = []
        var skipped: [DatasetProblem.Kind: Int] = [:]
        for stem in stems {
            let imageFiles = images.byStem[stem] ?? [], maskFiles = masks.byStem[stem] ?? []
            var found: [DatasetProblem] = []
            if imageFiles.isEmpty {
                for mask in maskFiles {
                    found.append(DatasetProblem(kind: .maskWithoutImage, file: mask,
                        message: "\(mask): mask without image; expected \(alternatives(config.imageSuffixes.map { stem + $0 })) in \(imageFolder)"))
                }
                skipped[.maskWithoutImage, default: 0] += maskFiles.count
                problems += found
                continue
            }
            for group in [imageFiles, maskFiles] where group.count > 1 {
                for file in group {
                    let others = group.filter { $0 != file }.map { ($0 as NSString).lastPathComponent }.joined(separator: ", ")
                    found.append(DatasetProblem(kind: .duplicateStem, file: file,
                        message: "\(file): same stem '\(stem)' as \(others); expected one image and one mask per stem"))
                }
            }
            if maskFiles.isEmpty {
                for image in imageFiles {
                    found.append(DatasetProblem(kind: .imageWithoutMask, file: image,
                        message: "\(image): image without mask; expected \(DatasetConfig.join(maskFolder, stem + config.maskSuffix))"))
                }
            }
            found += problemsByStem[stem] ?? []
            if let first = found.first {
                skipped[first.kind, default: 0] += imageFiles.count
                problems += found
            } else {
                usable.append(Entry(name: stem, imagePath: imageFiles[0], maskPath: maskFiles[0]))
            }
        }

        var report = DatasetIndexReport(split: split, imageFolder: imageFolder, maskFolder: maskFolder,
                                        imageCount: images.fileCount, maskCount: masks.fileCount, usableCount: usable.count,
                                        skipped: [:], problems: problems, ignoredFileCount: images.ignoredCount + masks.ignoredCount,
                                        maxReportedProblems: config.maxReportedProblems)
        guard problems.isEmpty || config.skipBadSamples else { throw DatasetError.badSamples(report) }
        report.skipped = skipped
        guard !usable.isEmpty else { throw DatasetError.noUsableSamples(report) }
        return (SegmentationDataset(entries: usable, config: config, split: split), report)
    }

    /// The file checks for one image/mask pair; every problem found (none = usable).
    static func checkPair(_ pair: Entry, rule: LabelRule) -> [DatasetProblem] {
        let maskPath = pair.maskPath!
        var problems: [DatasetProblem] = []
        var imageSize: (width: Int, height: Int)?
        do { imageSize = try ImageCodecs.imageSize(path: pair.imagePath) } catch {
            problems.append(DatasetProblem(kind: .unreadableImage, file: pair.imagePath,
                message: describe(error, file: pair.imagePath) + "; expected a JPEG or PNG image"))
        }
        var mask: LabelMask?
        do { mask = try ImageCodecs.decodeMask(path: maskPath) } catch {
            problems.append(DatasetProblem(kind: .unreadableMask, file: maskPath,
                message: describe(error, file: maskPath) + "; expected a single-channel PNG mask"))
        }
        guard let mask else { return problems }
        if let imageSize, imageSize.width != mask.width || imageSize.height != mask.height {
            problems.append(DatasetProblem(kind: .sizeMismatch, file: maskPath,
                message: "\(maskPath): mask is \(mask.width)×\(mask.height) but its image \(pair.imagePath) is \(imageSize.width)×\(imageSize.height); expected the same size"))
        }
        if let text = rule.check(mask.labels) {
            problems.append(DatasetProblem(kind: .labelOutOfRange, file: maskPath, message: "\(maskPath): \(text)"))
        }
        return problems
    }

    /// "a, b or c".
    static func alternatives(_ items: [String]) -> String {
        items.count <= 1 ? items.joined() : items.dropLast().joined(separator: ", ") + " or " + items.last!
    }

    /// Codec errors already start with the file; anything else gets it prepended.
    static func describe(_ error: Error, file: String) -> String {
        if let codec = error as? ImageCodecError { return codec.description }
        return "\(file): \(error)"
    }
}

/// Stored mask value → sample label (reduce_zero_label, then the ignore value as 255), and which stored
/// values are allowed: after reduction a class 0..<K, the ignore index, or 255 made by the reduction itself.
struct LabelRule: Sendable {
    let classCount: Int
    let ignoreIndex: Int
    let reduceZeroLabel: Bool
    /// 256 entries: stored value → label in samples.
    let map: [UInt8]
    /// 256 entries: 1 where the stored value is not allowed.
    let invalid: [UInt8]
    let isIdentity: Bool

    init(_ config: DatasetConfig) {
        classCount = config.classes.count
        ignoreIndex = config.ignoreIndex
        reduceZeroLabel = config.reduceZeroLabel
        var map = [UInt8](repeating: 255, count: 256), invalid = [UInt8](repeating: 0, count: 256)
        for stored in 0..<256 {
            let label = Self.reduce(stored, reduceZeroLabel)
            let allowed = label < classCount || label == ignoreIndex || (reduceZeroLabel && label == 255)
            invalid[stored] = allowed ? 0 : 1
            map[stored] = allowed && label != ignoreIndex ? UInt8(label) : 255
        }
        self.map = map
        self.invalid = invalid
        isIdentity = map.enumerated().allSatisfy { Int($0.element) == $0.offset }
    }

    /// mmseg: 0 → 255, v → v − 1, and 254 after that (stored 255) → 255.
    static func reduce(_ stored: Int, _ reduceZeroLabel: Bool) -> Int {
        guard reduceZeroLabel else { return stored }
        return stored == 0 || stored == 255 ? 255 : stored - 1
    }

    /// Maps stored values to sample labels in place; returns a problem description (labels untouched) if
    /// any value is not allowed.
    func apply(to labels: inout [UInt8]) -> String? {
        var bad: UInt8 = 0
        invalid.withUnsafeBufferPointer { invalid in
            labels.withUnsafeBufferPointer { for v in $0 { bad |= invalid[Int(v)] } }
        }
        if bad != 0 { return check(labels) }
        if isIdentity { return nil }
        map.withUnsafeBufferPointer { map in
            labels.withUnsafeMutableBufferPointer { labels in
                for i in 0..<labels.count { labels[i] = map[Int(labels[i])] }
            }
        }
        return nil
    }

    /// nil when every stored value is allowed; else which values (with pixel counts) and what was expected.
    func check(_ labels: [UInt8]) -> String? {
        var histogram = [Int](repeating: 0, count: 256)
        histogram.withUnsafeMutableBufferPointer { counts in
            labels.withUnsafeBufferPointer { for v in $0 { counts[Int(v)] += 1 } }
        }
        let offending = (0..<256).filter { histogram[$0] > 0 && invalid[$0] != 0 }
        guard !offending.isEmpty else { return nil }
        let shown = offending.prefix(8).map { stored -> String in
            let label = Self.reduce(stored, reduceZeroLabel)
            let origin = reduceZeroLabel ? " (stored \(stored))" : ""
            return "\(label)\(origin) in \(histogram[stored]) px"
        }
        let more = offending.count > shown.count ? ", … (\(offending.count) values in all)" : ""
        return "label values \(shown.joined(separator: ", "))\(more); expected \(allowedText)"
    }

    var allowedText: String {
        var text = "0…\(classCount - 1) (\(classCount) classes) or \(ignoreIndex) (ignore)"
        if reduceZeroLabel {
            text += (ignoreIndex == 255 ? "" : " or 255") + " after reduce_zero_label (stored 0 → 255, stored v → v−1)"
        }
        return text
    }
}

/// Files of one folder with an accepted suffix, grouped by stem (case-insensitive suffix match, longest
/// suffix cut; hidden files such as macOS "._x.jpg" and sub-folders are skipped and counted as ignored).
struct FolderListing {
    var byStem: [String: [String]] = [:]
    var fileCount = 0
    var ignoredCount = 0

    init(folder: String, suffixes: [String]) throws {
        let names: [String]
        do { names = try FileManager.default.contentsOfDirectory(atPath: folder) } catch {
            throw DatasetError.unreadableFolder(path: folder, reason: (error as NSError).localizedDescription)
        }
        let endings = suffixes.map { $0.lowercased() }.sorted { $0.count > $1.count }
        for name in names.sorted() {
            let path = DatasetConfig.join(folder, name)
            guard !name.hasPrefix("."), !DatasetConfig.isDirectory(path),
                  let ending = endings.first(where: { name.count > $0.count && name.suffix($0.count).lowercased() == $0 }) else {
                ignoredCount += 1
                continue
            }
            byStem[String(name.dropLast(ending.count)), default: []].append(path)
            fileCount += 1
        }
    }
}
