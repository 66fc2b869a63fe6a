// Dataset folders: config decoding, indexing checks (every bad-input message must name the file),
// skipping bad samples, reduce_zero_label, unlabelled images, and the real CamVid splits.
import AdaData
import AdaTestSupport
import Foundation
import Testing

/// A dataset folder built in a temporary directory: images as RGB PNG, masks as gray PNG.
private struct DatasetFolder {
    let root: URL
    let maskDir: String

    init(maskDir: String = "masks") {
        root = Fixtures.temporaryDirectory()
        self.maskDir = maskDir
    }

    func remove() { try? FileManager.default.removeItem(at: root) }

    func path(_ relative: String) -> String { root.appendingPathComponent(relative).path }

    @discardableResult
    func write(_ relative: String, _ data: Data) throws -> String {
        let url = root.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        return url.path
    }

    /// RGB pixels derived from `seed` so every image differs.
    static func pixels(width: Int, height: Int, seed: Int) -> [UInt8] {
        (0..<(width * height * 3)).map { UInt8((($0 * 7) + seed * 31) % 256) }
    }

    @discardableResult
    func image(_ split: String, _ file: String, width: Int = 3, height: Int = 2, seed: Int = 0) throws -> String {
        let png = try ImageCodecs.encodePNG(pixels: Self.pixels(width: width, height: height, seed: seed),
                                            width: width, height: height, kind: .rgb)
        return try write("images/\(split)/\(file)", png)
    }

    @discardableResult
    func mask(_ split: String, _ file: String, width: Int = 3, height: Int = 2, labels: [UInt8]? = nil) throws -> String {
        let values = labels ?? (0..<(width * height)).map { UInt8($0 % 3) }
        let png = try ImageCodecs.encodePNG(pixels: values, width: width, height: height, kind: .gray)
        return try write("\(maskDir)/\(split)/\(file)", png)
    }

    func config(classes: [String] = ["sky", "road", "car"]) -> DatasetConfig {
        DatasetConfig(root: root.path, classes: classes)
    }
}

private let camvidRoot = Fixtures.root + "/../data/camvid"
private let camvidJPEG = camvidRoot + "/images/train/0001TP_006690.jpg"
private let camvidClasses = ["sky", "building", "pole", "road", "sidewalk", "tree", "sign_symbol", "fence", "car",
                             "pedestrian", "bicyclist"]

/// The error thrown by `body`, as text (Issue.record if nothing is thrown).
private func errorText(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    Issue.record("expected an error")
    return ""
}

private func indexError(_ config: DatasetConfig, split: String = "train") -> (DatasetError?, String) {
    do { _ = try SegmentationDataset.index(config, split: split) } catch {
        return (error as? DatasetError, "\(error)")
    }
    Issue.record("expected indexing to fail")
    return (nil, "")
}

@Suite("Datasets")
struct DatasetTests {
    // MARK: Layout and pairing

    @Test func mmsegLayoutWithMasksFolder() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let labels: [UInt8] = [0, 1, 2, 255, 1, 0]
        for (seed, stem) in ["x2", "x1", "x10"].enumerated() {
            try folder.image("train", stem + ".png", seed: seed)
            try folder.mask("train", stem + ".png", labels: labels)
        }
        try folder.image("val", "v.png")
        try folder.mask("val", "v.png")
        let (train, report) = try SegmentationDataset.index(folder.config(), split: "train")
        #expect(train.names == ["x1", "x10", "x2"])  // ordered by stem, not by listing order
        #expect(report.imageCount == 3 && report.maskCount == 3 && report.usableCount == 3)
        #expect(report.problems.isEmpty && report.skipped.isEmpty && report.skippedImageCount == 0)
        #expect(report.maskFolder == folder.path("masks/train") && report.imageFolder == folder.path("images/train"))
        let sample = try train.sample(at: 2)  // x2 was written with seed 0
        #expect(sample.name == "x2" && sample.originalWidth == 3 && sample.originalHeight == 2)
        #expect(sample.image == ImageBuffer(width: 3, height: 2, pixels: DatasetFolder.pixels(width: 3, height: 2, seed: 0).map(Float.init)))
        #expect(sample.mask == LabelMask(width: 3, height: 2, labels: labels))
        let (val, _) = try SegmentationDataset.index(folder.config(), split: "val")
        #expect(val.count == 1 && val.names == ["v"] && val.split == "val" && val.isLabelled)
    }

    @Test func annotationsFolderAndExplicitMaskDir() throws {
        let folder = DatasetFolder(maskDir: "annotations")
        defer { folder.remove() }
        try folder.image("train", "a.png")
        try folder.mask("train", "a.png", labels: [2, 2, 2, 1, 1, 1])
        let (dataset, report) = try SegmentationDataset.index(folder.config(), split: "train")
        #expect(report.maskFolder == folder.path("annotations/train"))
        #expect(try dataset.sample(at: 0).mask?.labels == [2, 2, 2, 1, 1, 1])

        // "masks" wins over "annotations" when both exist; an explicit maskDir wins over both.
        try folder.write("masks/train/a.png", ImageCodecs.encodePNG(pixels: [0, 0, 0, 0, 0, 0], width: 3, height: 2, kind: .gray))
        #expect(try SegmentationDataset.index(folder.config(), split: "train").1.maskFolder == folder.path("masks/train"))
        try folder.write("labels/train/a.png", ImageCodecs.encodePNG(pixels: [1, 1, 1, 1, 1, 1], width: 3, height: 2, kind: .gray))
        var config = folder.config()
        config.maskDir = "labels"
        let (explicit, explicitReport) = try SegmentationDataset.index(config, split: "train")
        #expect(explicitReport.maskFolder == folder.path("labels/train"))
        #expect(try explicit.sample(at: 0).mask?.labels == [1, 1, 1, 1, 1, 1])
    }

    @Test func stemMatchingWithMixedSuffixes() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: camvidJPEG))
        try folder.write("images/train/a.jpg", jpeg)
        try folder.write("images/train/b.JPEG", jpeg)  // suffixes match case-insensitively
        try folder.image("train", "c.png")
        try folder.image("train", "d.x.png")            // only the suffix is cut: stem "d.x"
        try folder.mask("train", "a.png", width: 480, height: 360, labels: [UInt8](repeating: 3, count: 480 * 360))
        try folder.mask("train", "b.png", width: 480, height: 360, labels: [UInt8](repeating: 4, count: 480 * 360))
        try folder.mask("train", "c.png")
        try folder.mask("train", "d.x.png")
        // Not considered: other suffixes, hidden files (macOS "._" forks), sub-folders.
        try folder.write("images/train/notes.txt", Data("hello".utf8))
        try folder.write("images/train/._a.jpg", Data("resource fork".utf8))
        try folder.write("images/train/extra/e.png", Data())
        let (dataset, report) = try SegmentationDataset.index(folder.config(classes: camvidClasses), split: "train")
        #expect(dataset.names == ["a", "b", "c", "d.x"])
        #expect(report.imageCount == 4 && report.usableCount == 4 && report.ignoredFileCount == 3)
        let b = try dataset.sample(at: 1)
        #expect(b.image.width == 480 && b.image.height == 360 && b.mask?.labels.allSatisfy { $0 == 4 } == true)

        // Cityscapes-style multi-part suffixes pair up too.
        let city = DatasetFolder()
        defer { city.remove() }
        try city.image("train", "aachen_000001_leftImg8bit.png")
        try city.mask("train", "aachen_000001_gtFine_labelTrainIds.png")
        var config = city.config()
        config.imageSuffixes = ["_leftImg8bit.png"]
        config.maskSuffix = "_gtFine_labelTrainIds.png"
        #expect(try SegmentationDataset.index(config, split: "train").0.names == ["aachen_000001"])
    }

    // MARK: Bad inputs (each message names the file)

    @Test func imageWithoutMask() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        try folder.image("train", "a.png")
        try folder.mask("train", "a.png")
        let lonely = try folder.image("train", "lonely.png")
        let (error, text) = indexError(folder.config())
        guard case .badSamples(let report)? = error else { Issue.record("\(text)"); return }
        #expect(report.problems.map(\.kind) == [.imageWithoutMask])
        #expect(text.contains(lonely) && text.contains(folder.path("masks/train/lonely.png")), "\(text)")
        #expect(text.contains("1 problem in 2 images"), "\(text)")
    }

    @Test func maskWithoutImage() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        try folder.image("train", "a.png")
        try folder.mask("train", "a.png")
        let orphan = try folder.mask("train", "orphan.png")
        let (error, text) = indexError(folder.config())
        guard case .badSamples(let report)? = error else { Issue.record("\(text)"); return }
        #expect(report.problems == [DatasetProblem(kind: .maskWithoutImage, file: orphan, message: report.problems[0].message)])
        #expect(text.contains(orphan) && text.contains("expected orphan.jpg, orphan.jpeg or orphan.png in \(folder.path("images/train"))"), "\(text)")
    }

    @Test func maskSizeMismatch() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let image = try folder.image("train", "a.png", width: 3, height: 2)
        let mask = try folder.mask("train", "a.png", width: 4, height: 2)
        let (error, text) = indexError(folder.config())
        guard case .badSamples(let report)? = error else { Issue.record("\(text)"); return }
        #expect(report.problems.map(\.kind) == [.sizeMismatch] && report.problems[0].file == mask)
        #expect(text.contains("\(mask): mask is 4×2 but its image \(image) is 3×2; expected the same size"), "\(text)")
    }

    @Test func outOfRangeLabel() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        try folder.image("train", "a.png")
        let mask = try folder.mask("train", "a.png", labels: [0, 1, 7, 7, 255, 9])
        let (error, text) = indexError(folder.config())  // 3 classes
        guard case .badSamples(let report)? = error else { Issue.record("\(text)"); return }
        #expect(report.problems.map(\.kind) == [.labelOutOfRange] && report.problems[0].file == mask)
        #expect(text.contains("\(mask): label values 7 in 2 px, 9 in 1 px; expected 0…2 (3 classes) or 255 (ignore)"), "\(text)")
    }

    @Test func corruptImageFiles() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let text = try folder.write("images/train/text.jpg", Data("not an image at all".utf8))
        let png = try ImageCodecs.encodePNG(pixels: [UInt8](repeating: 9, count: 18), width: 3, height: 2, kind: .rgb)
        let cut = try folder.write("images/train/cut.png", png.prefix(20))  // signature + part of IHDR
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: camvidJPEG))
        let cutJPEG = try folder.write("images/train/cutheader.jpg", jpeg.prefix(40))
        for stem in ["text", "cut", "cutheader"] { try folder.mask("train", stem + ".png") }
        let (error, message) = indexError(folder.config())
        guard case .badSamples(let report)? = error else { Issue.record("\(message)"); return }
        #expect(report.problems.map(\.kind) == [.unreadableImage, .unreadableImage, .unreadableImage], "\(message)")
        #expect(Set(report.problems.map(\.file)) == [text, cut, cutJPEG])
        for file in [text, cut, cutJPEG] {
            #expect(message.contains("\(file): ") && message.contains("expected a JPEG or PNG image"), "\(message)")
        }
    }

    @Test func zeroByteMask() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        try folder.image("train", "a.png")
        let mask = try folder.write("masks/train/a.png", Data())
        let (error, text) = indexError(folder.config())
        guard case .badSamples(let report)? = error else { Issue.record("\(text)"); return }
        #expect(report.problems.map(\.kind) == [.unreadableMask])
        #expect(text.contains("\(mask): empty file (0 bytes); expected a single-channel PNG mask"), "\(text)")
    }

    /// One folder with every kind of problem next to two good samples.
    private func messyFolder() throws -> DatasetFolder {
        let folder = DatasetFolder()
        for stem in ["good1", "good2"] {
            try folder.image("train", stem + ".png")
            try folder.mask("train", stem + ".png")
        }
        try folder.image("train", "nomask.png")
        try folder.mask("train", "noimage.png")
        try folder.image("train", "size.png")
        try folder.mask("train", "size.png", width: 2, height: 2)
        try folder.image("train", "label.png")
        try folder.mask("train", "label.png", labels: [0, 1, 2, 3, 4, 5])
        try folder.write("images/train/corrupt.png", Data("garbage".utf8))
        try folder.mask("train", "corrupt.png")
        try folder.image("train", "zero.png")
        try folder.write("masks/train/zero.png", Data())
        try folder.image("train", "dup.png")
        try folder.image("train", "dup.jpg")
        try folder.mask("train", "dup.png")
        return folder
    }

    @Test func skipBadSamplesCountsEachReason() throws {
        let folder = try messyFolder()
        defer { folder.remove() }
        var config = folder.config()
        config.skipBadSamples = true
        config.maxReportedProblems = 3
        let (dataset, report) = try SegmentationDataset.index(config, split: "train")
        #expect(dataset.names == ["good1", "good2"])
        #expect(report.imageCount == 9 && report.maskCount == 8 && report.usableCount == 2 && report.skippedImageCount == 7)
        #expect(report.skipped == [.imageWithoutMask: 1, .maskWithoutImage: 1, .sizeMismatch: 1, .labelOutOfRange: 1,
                                   .unreadableImage: 1, .unreadableMask: 1, .duplicateStem: 2])
        #expect(report.problems.count == 8)
        // Problems come in stem order: corrupt, dup (×2), label, noimage, nomask, size, zero.
        #expect(report.problems.map(\.kind) == [.unreadableImage, .duplicateStem, .duplicateStem, .labelOutOfRange,
                                                .maskWithoutImage, .imageWithoutMask, .sizeMismatch, .unreadableMask])
        #expect(report.problemLines.count == 3 && report.problemLines[0].hasPrefix(folder.path("images/train/corrupt.png")))
        #expect("\(report)".contains("… and 5 more problems"), "\(report)")
        for problem in report.problems { #expect(problem.message.hasPrefix(problem.file + ": "), "\(problem)") }
    }

    @Test func errorListsFirstProblemsAndTotal() throws {
        let folder = try messyFolder()
        defer { folder.remove() }
        var config = folder.config()
        config.maxReportedProblems = 3
        let (error, text) = indexError(config)
        guard case .badSamples? = error else { Issue.record("\(text)"); return }
        let lines = text.split(separator: "\n").map(String.init)
        #expect(lines[0].contains("8 problems in 9 images") && lines[0].contains(folder.path("images/train")), "\(text)")
        #expect(lines.count == 1 + 3 + 1 + 1, "\(text)")  // header, 3 problems, "… and 5 more", hint
        #expect(lines[1].contains(folder.path("images/train/corrupt.png")) && lines[2].contains(folder.path("images/train/dup.jpg")), "\(text)")
        #expect(lines[4].contains("and 5 more problems") && lines[5].contains("skip_bad_samples"), "\(text)")
        // All bad: nothing usable is an error even when skipping.
        let bad = DatasetFolder()
        defer { bad.remove() }
        let lonely = try bad.image("train", "lonely.png")
        try FileManager.default.createDirectory(atPath: bad.path("masks/train"), withIntermediateDirectories: true)
        var skipping = bad.config()
        skipping.skipBadSamples = true
        let (none, noneText) = indexError(skipping)
        guard case .noUsableSamples? = none else { Issue.record("\(noneText)"); return }
        #expect(noneText.contains(lonely), "\(noneText)")
    }

    @Test func missingFoldersAndEmptySplit() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        var config = folder.config()
        config.root = folder.path("nowhere")
        #expect(indexError(config).1.contains(folder.path("nowhere") + ": dataset root not found"))
        #expect(indexError(folder.config()).1.contains(folder.path("images") + ": image folder"))
        try folder.image("train", "a.png")
        let noMasks = indexError(folder.config()).1
        #expect(noMasks.contains(folder.path("masks")) && noMasks.contains(folder.path("annotations")), "\(noMasks)")
        try folder.mask("train", "a.png")
        let noSplit = indexError(folder.config(), split: "test").1
        #expect(noSplit.contains(folder.path("images/test") + ": image folder of split 'test' not found"), "\(noSplit)")
        try FileManager.default.createDirectory(atPath: folder.path("images/empty"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: folder.path("masks/empty"), withIntermediateDirectories: true)
        let empty = indexError(folder.config(), split: "empty").1
        #expect(empty == "\(folder.path("images/empty")): no images (expected files ending in .jpg, .jpeg, .png)", "\(empty)")
        try FileManager.default.createDirectory(atPath: folder.path("images/nomasks"), withIntermediateDirectories: true)
        #expect(indexError(folder.config(), split: "nomasks").1.contains(folder.path("masks/nomasks") + ": mask folder of split 'nomasks' not found"))
    }

    // MARK: Labels

    @Test func reduceZeroLabel() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let classes = (0..<150).map { "class\($0)" }
        try folder.image("train", "a.png")
        try folder.mask("train", "a.png", labels: [0, 1, 150, 255, 2, 75])
        var config = folder.config(classes: classes)
        config.reduceZeroLabel = true
        let (dataset, _) = try SegmentationDataset.index(config, split: "train")
        #expect(try dataset.sample(at: 0).mask?.labels == [255, 0, 149, 255, 1, 74])
        // Stored 152 becomes 151: outside 0…149.
        let mask = try folder.mask("train", "a.png", labels: [0, 1, 152, 152, 2, 3])
        let (_, text) = indexError(config)
        #expect(text.contains("\(mask): label values 151 (stored 152) in 2 px; expected 0…149 (150 classes) or 255 (ignore) after reduce_zero_label"), "\(text)")
        // The full table: 0 → 255, v → v−1, 255 → 255; stored 151…254 are refused (104 values).
        let every = try folder.mask("train", "a.png", width: 256, height: 1, labels: (0...255).map(UInt8.init))
        try folder.image("train", "a.png", width: 256, height: 1)
        let (_, all) = indexError(config)
        #expect(all.contains("\(every): label values 150 (stored 151) in 1 px, 151 (stored 152) in 1 px"), "\(all)")
        #expect(all.contains("(104 values in all)"), "\(all)")
        try folder.mask("train", "a.png", width: 152, height: 1, labels: (0...150).map(UInt8.init) + [255])
        try folder.image("train", "a.png", width: 152, height: 1)
        let (table, _) = try SegmentationDataset.index(config, split: "train")
        #expect(try table.sample(at: 0).mask?.labels == [255] + (0...149).map(UInt8.init) + [255])
    }

    @Test func customIgnoreIndexBecomes255InSamples() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        try folder.image("train", "a.png")
        try folder.mask("train", "a.png", labels: [0, 1, 2, 200, 200, 0])
        var config = folder.config()
        config.ignoreIndex = 200
        #expect(try SegmentationDataset.index(config, split: "train").0.sample(at: 0).mask?.labels == [0, 1, 2, 255, 255, 0])
        try folder.mask("train", "a.png", labels: [0, 1, 2, 255, 200, 0])  // 255 is not the ignore value here
        #expect(indexError(config).1.contains("label values 255 in 1 px; expected 0…2 (3 classes) or 200 (ignore)"))
    }

    // MARK: Samples after indexing, unlabelled images, header probe

    @Test func sampleErrorsNameTheFile() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let image = try folder.image("train", "a.png")
        try folder.mask("train", "a.png")
        let (dataset, _) = try SegmentationDataset.index(folder.config(), split: "train")
        let mask = try folder.mask("train", "a.png", width: 5, height: 5)  // files changed after indexing
        #expect(errorText { _ = try dataset.sample(at: 0) } == "\(mask): mask is 5×5 but its image \(image) is 3×2; expected the same size")
        try folder.mask("train", "a.png", labels: [0, 0, 0, 0, 0, 9])
        let labels = errorText { _ = try dataset.sample(at: 0) }
        #expect(labels.hasPrefix(mask + ": label values 9 in 1 px"), "\(labels)")
        try folder.write("images/train/a.png", Data("broken".utf8))
        #expect(errorText { _ = try dataset.sample(at: 0) }.hasPrefix(image + ": "))
        try FileManager.default.removeItem(atPath: image)
        #expect(errorText { _ = try dataset.sample(at: 0) }.hasPrefix(image + ": cannot read"))
    }

    @Test func unlabelledImages() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        let second = try folder.image("test", "b.png", seed: 2)
        let first = try folder.image("test", "a.png", width: 4, height: 1, seed: 1)
        try folder.write("images/test/readme.md", Data("x".utf8))
        let paths = try SegmentationDataset.imagePaths(in: folder.path("images/test"))
        #expect(paths == [first, second])
        let dataset = SegmentationDataset(images: paths + [folder.path("images/test/missing.jpg")])
        #expect(dataset.count == 3 && dataset.names == ["a", "b", "missing"] && !dataset.isLabelled)
        let sample = try dataset.sample(at: 0)
        #expect(sample.mask == nil && sample.name == "a" && sample.image.width == 4 && sample.image.height == 1)
        #expect(sample.image.pixels == DatasetFolder.pixels(width: 4, height: 1, seed: 1).map(Float.init))
        #expect(errorText { _ = try dataset.sample(at: 2) }.hasPrefix(folder.path("images/test/missing.jpg") + ": cannot read"))
        #expect(errorText { _ = try SegmentationDataset.imagePaths(in: folder.path("nope")) }.hasPrefix(folder.path("nope") + ": "))
    }

    @Test func headerSizeProbe() throws {
        let folder = DatasetFolder()
        defer { folder.remove() }
        #expect(try ImageCodecs.imageSize(path: camvidJPEG) == (480, 360))
        let png = try ImageCodecs.encodePNG(pixels: [UInt8](repeating: 0, count: 7 * 5 * 3), width: 7, height: 5, kind: .rgb)
        #expect(try ImageCodecs.imageSize(data: png, name: "p") == (7, 5))
        let gray = try ImageCodecs.encodePNG(pixels: [UInt8](repeating: 0, count: 9 * 2), width: 9, height: 2, kind: .gray)
        #expect(try ImageCodecs.imageSize(data: gray, name: "g") == (9, 2))
        var badCRC = png
        badCRC[20] ^= 0xFF  // inside IHDR: its CRC no longer matches
        for (name, data) in [("garbage.png", Data("hello".utf8)), ("crc.png", badCRC), ("empty.jpg", Data()),
                             ("header.jpg", Data([0xFF, 0xD8, 0xFF]))] {
            let path = try folder.write(name, data)
            #expect(errorText { _ = try ImageCodecs.imageSize(path: path) }.hasPrefix(path + ": "))
        }
    }

    // MARK: Config

    @Test func configDecodingWithDefaults() throws {
        let minimal = try JSONDecoder().decode(DatasetConfig.self, from: Data(#"{"root": "/data/ade", "classes": ["wall", "floor"]}"#.utf8))
        #expect(minimal == DatasetConfig(root: "/data/ade", classes: ["wall", "floor"]))
        #expect(minimal.imageDir == "images" && minimal.maskDir == nil && minimal.imageSuffixes == [".jpg", ".jpeg", ".png"])
        #expect(minimal.maskSuffix == ".png" && minimal.trainSplit == "train" && minimal.valSplit == "val" && minimal.palette == nil)
        #expect(!minimal.reduceZeroLabel && minimal.ignoreIndex == 255 && !minimal.skipBadSamples && minimal.maxReportedProblems == 20)
        #expect(minimal.resolvedPalette == [[0, 0, 0], [128, 0, 0]])

        let full = try JSONDecoder().decode(DatasetConfig.self, from: Data("""
            {"root": "r", "classes": ["a"], "maskDir": "annotations", "reduceZeroLabel": true, "ignoreIndex": 200,
             "trainSplit": "training", "valSplit": "validation", "palette": [[1, 2, 3]], "skipBadSamples": true}
            """.utf8))
        #expect(full.maskDir == "annotations" && full.reduceZeroLabel && full.ignoreIndex == 200 && full.skipBadSamples)
        #expect(full.trainSplit == "training" && full.valSplit == "validation" && full.resolvedPalette == [[1, 2, 3]])
        #expect(try JSONDecoder().decode(DatasetConfig.self, from: JSONEncoder().encode(full)) == full)

    }

    @Test func configValidation() throws {
        // Decoding accepts a partial section; indexing refuses one without root and classes.
        let partial = try JSONDecoder().decode(DatasetConfig.self, from: Data("{}".utf8))
        let missing = errorText { try partial.validate() }
        #expect(missing.contains("root: not set") && missing.contains("classes: empty"), "\(missing)")
        var config = DatasetConfig(root: "/r", classes: ["a", "b", "a"], palette: [[1, 2, 3], [4, 5, 300]], ignoreIndex: 1)
        let text = errorText { try config.validate() }
        for fragment in ["'a' appears twice", "palette: 2 colours for 3 classes", "entry 1 is [4, 5, 300]", "ignore_index: 1 is a class index"] {
            #expect(text.contains(fragment), "\(text)")
        }
        config = DatasetConfig(root: "/r", classes: ["a"])
        try config.validate()
        #expect(indexError(DatasetConfig(root: "/r", classes: [])).1.contains("classes: empty"))
    }

    @Test func defaultPaletteIsDistinct() {
        let palette = DatasetConfig.defaultPalette(count: 256)
        #expect(Set(palette).count == 256)
        #expect(Array(palette.prefix(5)) == [[0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128]])
        #expect(palette.allSatisfy { $0.count == 3 && $0.allSatisfy { (0...255).contains($0) } })
    }

    // MARK: Real data

    @Test func realCamVidSplitsIndexCleanly() throws {
        let config = DatasetConfig(root: camvidRoot, classes: camvidClasses)
        let start = Date()
        let (train, report) = try SegmentationDataset.index(config, split: config.trainSplit)
        let seconds = Date().timeIntervalSince(start)
        #expect(train.count == 367 && report.imageCount == 367 && report.maskCount == 367 && report.usableCount == 367)
        #expect(report.problems.isEmpty && report.skipped.isEmpty && report.ignoredFileCount == 0)
        #expect(train.config?.classes.count == 11 && train.names.first == "0001TP_006690")
        #expect(train.names == train.names.sorted())
        let sample = try train.sample(at: 0)
        #expect(sample.image.width == 480 && sample.image.height == 360 && sample.mask?.labels.count == 480 * 360)
        #expect(sample.mask?.labels.allSatisfy { $0 <= 10 || $0 == 255 } == true)
        let (val, valReport) = try SegmentationDataset.index(config, split: config.valSplit)
        #expect(val.count == 101 && valReport.problems.isEmpty)
        print("CamVid train indexed in \(String(format: "%.2f", seconds)) s: \(report)")
    }
}
