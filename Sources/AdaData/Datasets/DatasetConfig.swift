// Where a segmentation dataset lives on disk and how its masks are read (the `dataset:` section of a run
// config). Layout as mmsegmentation: <root>/<imageDir>/<split>/<stem><image suffix> beside
// <root>/<maskDir>/<split>/<stem><mask suffix>; images and masks pair up by file stem.
//
// Legend: K = number of classes; labels are 0..<K, plus `ignoreIndex` for "not scored".
import Foundation

public struct DatasetConfig: Codable, Equatable, Sendable {
    /// Dataset folder (holds `imageDir` and the mask folder).
    public var root: String
    /// Image folder under `root`; each split is a sub-folder of it.
    public var imageDir: String
    /// Mask folder under `root`; nil = the first of "masks", "annotations" that exists.
    public var maskDir: String?
    /// Accepted image file endings (matched case-insensitively; the longest match is cut to get the stem).
    public var imageSuffixes: [String]
    /// Mask file ending (e.g. ".png", or "_labelTrainIds.png" for Cityscapes-style names).
    public var maskSuffix: String
    public var trainSplit: String
    public var valSplit: String
    /// Class names, index = label value (after reduce_zero_label). Required, non-empty.
    public var classes: [String]
    /// One RGB triple (0–255) per class for visualisations; nil = `DatasetConfig.defaultPalette`.
    public var palette: [[Int]]?
    /// ADE20K convention (mmseg): stored 0 ("other") → ignore, every other label − 1, 254 after that → 255.
    public var reduceZeroLabel: Bool
    /// Stored label value (after reduce_zero_label) that is not scored; samples carry it as 255.
    public var ignoreIndex: Int
    /// false: any bad sample stops indexing with a list of problems; true: bad samples are dropped and counted.
    public var skipBadSamples: Bool
    /// How many problem lines an indexing error or report shows (the total is always given).
    public var maxReportedProblems: Int

    public static let defaultMaskDirs = ["masks", "annotations"]

    public init(root: String, classes: [String], imageDir: String = "images", maskDir: String? = nil,
                imageSuffixes: [String] = [".jpg", ".jpeg", ".png"], maskSuffix: String = ".png",
                trainSplit: String = "train", valSplit: String = "val", palette: [[Int]]? = nil,
                reduceZeroLabel: Bool = false, ignoreIndex: Int = 255, skipBadSamples: Bool = false,
                maxReportedProblems: Int = 20) {
        self.root = root
        self.classes = classes
        self.imageDir = imageDir
        self.maskDir = maskDir
        self.imageSuffixes = imageSuffixes
        self.maskSuffix = maskSuffix
        self.trainSplit = trainSplit
        self.valSplit = valSplit
        self.palette = palette
        self.reduceZeroLabel = reduceZeroLabel
        self.ignoreIndex = ignoreIndex
        self.skipBadSamples = skipBadSamples
        self.maxReportedProblems = maxReportedProblems
    }

    // MARK: Decoding — every key optional with its default. Unknown or misspelt keys are refused by the
    // config layer (AdaRun's ConfigDecoder), which also maps YAML snake_case to these names.

    enum CodingKeys: String, CodingKey, CaseIterable {
        case root, imageDir, maskDir, imageSuffixes, maskSuffix, trainSplit, valSplit, classes, palette
        case reduceZeroLabel, ignoreIndex, skipBadSamples, maxReportedProblems
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = DatasetConfig(root: "", classes: [])
        self.init(root: try c.decodeIfPresent(String.self, forKey: .root) ?? d.root,
                  classes: try c.decodeIfPresent([String].self, forKey: .classes) ?? d.classes,
                  imageDir: try c.decodeIfPresent(String.self, forKey: .imageDir) ?? d.imageDir,
                  maskDir: try c.decodeIfPresent(String.self, forKey: .maskDir),
                  imageSuffixes: try c.decodeIfPresent([String].self, forKey: .imageSuffixes) ?? d.imageSuffixes,
                  maskSuffix: try c.decodeIfPresent(String.self, forKey: .maskSuffix) ?? d.maskSuffix,
                  trainSplit: try c.decodeIfPresent(String.self, forKey: .trainSplit) ?? d.trainSplit,
                  valSplit: try c.decodeIfPresent(String.self, forKey: .valSplit) ?? d.valSplit,
                  palette: try c.decodeIfPresent([[Int]].self, forKey: .palette),
                  reduceZeroLabel: try c.decodeIfPresent(Bool.self, forKey: .reduceZeroLabel) ?? d.reduceZeroLabel,
                  ignoreIndex: try c.decodeIfPresent(Int.self, forKey: .ignoreIndex) ?? d.ignoreIndex,
                  skipBadSamples: try c.decodeIfPresent(Bool.self, forKey: .skipBadSamples) ?? d.skipBadSamples,
                  maxReportedProblems: try c.decodeIfPresent(Int.self, forKey: .maxReportedProblems) ?? d.maxReportedProblems)
    }

    // MARK: Checks and derived values

    /// Every setting problem at once (decoding accepts a partial section so that command-line overrides
    /// such as the root can be applied afterwards; indexing calls this first).
    public func validate() throws {
        var issues: [String] = []
        if root.isEmpty { issues.append("root: not set (the dataset folder)") }
        if classes.isEmpty { issues.append("classes: empty (list the class names, index = label value)") }
        if classes.count > 255 { issues.append("classes: \(classes.count) names, at most 255 (label 255 means ignore)") }
        if let empty = classes.firstIndex(where: { $0.isEmpty }) { issues.append("classes: name \(empty) is empty") }
        var seen: [String: Int] = [:]
        for (index, name) in classes.enumerated() where !name.isEmpty {
            if let first = seen[name] { issues.append("classes: '\(name)' appears twice (indices \(first) and \(index))") } else { seen[name] = index }
        }
        if let palette {
            if palette.count != classes.count {
                issues.append("palette: \(palette.count) colours for \(classes.count) classes (expected one RGB triple per class)")
            }
            for (index, color) in palette.enumerated() where color.count != 3 || color.contains(where: { !(0...255).contains($0) }) {
                issues.append("palette: entry \(index) is \(color) (expected [r, g, b] with values 0…255)")
            }
        }
        if !(0...255).contains(ignoreIndex) { issues.append("ignore_index: \(ignoreIndex) (expected 0…255)") }
        else if ignoreIndex < classes.count {
            issues.append("ignore_index: \(ignoreIndex) is a class index (classes are 0…\(classes.count - 1)); use a value ≥ \(classes.count), usually 255")
        }
        if imageDir.isEmpty { issues.append("image_dir: empty") }
        if let maskDir, maskDir.isEmpty { issues.append("mask_dir: empty (omit it to use masks/ or annotations/)") }
        if imageSuffixes.isEmpty || imageSuffixes.contains(where: { $0.isEmpty }) {
            issues.append("image_suffixes: \(imageSuffixes) (expected file endings such as \".jpg\")")
        }
        if maskSuffix.isEmpty { issues.append("mask_suffix: empty (expected a file ending such as \".png\")") }
        if trainSplit.isEmpty { issues.append("train_split: empty") }
        if valSplit.isEmpty { issues.append("val_split: empty") }
        if maxReportedProblems < 0 { issues.append("max_reported_problems: \(maxReportedProblems) (expected ≥ 0)") }
        if !issues.isEmpty { throw DatasetError.invalidConfig(issues) }
    }

    /// The configured palette, or the default one for this many classes.
    public var resolvedPalette: [[Int]] { palette ?? Self.defaultPalette(count: classes.count) }

    /// A fixed palette of distinct colours (the PASCAL VOC bit-interleaved colour map: entry i spreads the
    /// bits of i over the high bits of R, G and B, so all 256 entries differ).
    public static func defaultPalette(count: Int) -> [[Int]] {
        (0..<count).map { index in
            var rgb = [0, 0, 0]
            var code = index
            for bit in 0..<8 {
                for channel in 0..<3 { rgb[channel] |= ((code >> channel) & 1) << (7 - bit) }
                code >>= 3
            }
            return rgb
        }
    }

    /// <root>/<imageDir>/<split>.
    public func imageFolder(split: String) -> String { Self.join(root, imageDir, split) }

    /// The mask folder under the root: `maskDir` if set, else the first default that exists (nil if none).
    public func resolvedMaskDir() -> String? {
        if let maskDir { return maskDir }
        return Self.defaultMaskDirs.first { Self.isDirectory(Self.join(root, $0)) }
    }

    static func join(_ parts: String...) -> String {
        parts.dropFirst().reduce(parts[0]) { ($0 as NSString).appendingPathComponent($1) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var directory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &directory) && directory.boolValue
    }
}
