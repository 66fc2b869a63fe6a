// What indexing a dataset split found: file counts, usable samples, the samples dropped and why, and one
// line per problem naming the file and what was expected. Also the dataset errors.
import Foundation

/// One thing wrong with a dataset file.
public struct DatasetProblem: Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, CaseIterable, Comparable, Sendable {
        case imageWithoutMask = "image without mask"
        case maskWithoutImage = "mask without image"
        case duplicateStem = "duplicate stem"
        case unreadableImage = "unreadable image"
        case unreadableMask = "unreadable mask"
        case sizeMismatch = "mask size differs from image size"
        case labelOutOfRange = "label values out of range"

        public static func < (a: Kind, b: Kind) -> Bool {
            allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
        }
    }

    public var kind: Kind
    /// The file at fault (the one a user has to fix or remove).
    public var file: String
    /// The full line: starts with the file, says what was found and what was expected.
    public var message: String

    public init(kind: Kind, file: String, message: String) {
        self.kind = kind
        self.file = file
        self.message = message
    }

    public var description: String { message }
}

public struct DatasetIndexReport: Equatable, Sendable, CustomStringConvertible {
    public var split: String
    public var imageFolder: String
    public var maskFolder: String
    /// Files with an accepted image suffix in the image folder.
    public var imageCount: Int
    /// Files with the mask suffix in the mask folder.
    public var maskCount: Int
    /// Samples in the dataset.
    public var usableCount: Int
    /// Files dropped (only with skipBadSamples), each counted once under its first problem. Images count
    /// under every kind except `.maskWithoutImage`, which counts unused masks.
    public var skipped: [DatasetProblem.Kind: Int]
    /// Every problem found, in stem order (a file may have more than one).
    public var problems: [DatasetProblem]
    /// Files in the two folders that were not considered (other suffixes, hidden files, sub-folders).
    public var ignoredFileCount: Int
    public var maxReportedProblems: Int

    /// Images dropped (unused masks not included).
    public var skippedImageCount: Int { imageCount - usableCount }

    /// The first `maxReportedProblems` problem lines.
    public var problemLines: [String] { problems.prefix(maxReportedProblems).map(\.message) }

    /// Problem lines, then "… and N more" when some are not shown.
    var problemListing: [String] {
        var lines = problemLines.map { "  " + $0 }
        let hidden = problems.count - lines.count
        if hidden > 0 { lines.append("  … and \(hidden) more problem\(hidden == 1 ? "" : "s")") }
        return lines
    }

    public var description: String {
        var lines = ["split '\(split)': \(counted(imageCount, "image")) in \(imageFolder), \(counted(maskCount, "mask")) in \(maskFolder) → \(counted(usableCount, "sample"))"]
        if !skipped.isEmpty {
            let reasons = skipped.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key.rawValue)" }
            lines.append("skipped: " + reasons.joined(separator: ", "))
        }
        if ignoredFileCount > 0 { lines.append("ignored \(ignoredFileCount) other file\(ignoredFileCount == 1 ? "" : "s") (other suffixes, hidden files, sub-folders)") }
        if !problems.isEmpty {
            lines.append("\(problems.count) problem\(problems.count == 1 ? "" : "s"):")
            lines += problemListing
        }
        return lines.joined(separator: "\n")
    }
}

/// "1 image", "3 images".
func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

public enum DatasetError: Error, CustomStringConvertible, Equatable {
    /// Settings that cannot work (one line per setting).
    case invalidConfig([String])
    /// A folder the layout requires does not exist; `role` says which one.
    case missingFolder(path: String, role: String)
    /// No mask folder was configured and none of the default names exists under the root.
    case noMaskFolder(root: String, tried: [String])
    /// A folder exists but cannot be listed.
    case unreadableFolder(path: String, reason: String)
    /// The split's image folder holds no file with an accepted suffix.
    case emptySplit(folder: String, suffixes: [String])
    /// Indexing found problems and skipBadSamples is false.
    case badSamples(DatasetIndexReport)
    /// Every sample was dropped (skipBadSamples is true but nothing is left).
    case noUsableSamples(DatasetIndexReport)
    /// Reading one sample failed after indexing (e.g. the file changed); names the file.
    case badSample(file: String, reason: String)

    public var description: String {
        switch self {
        case let .invalidConfig(issues):
            return (["invalid dataset config:"] + issues.map { "  " + $0 }).joined(separator: "\n")
        case let .missingFolder(path, role):
            return "\(path): \(role) not found (expected the layout <root>/<imageDir>/<split> and <root>/<maskDir>/<split>)"
        case let .noMaskFolder(root, tried):
            let paths = tried.map { DatasetConfig.join(root, $0) }.joined(separator: " nor ")
            return "\(root): no mask folder: neither \(paths) exists (set mask_dir)"
        case let .unreadableFolder(path, reason):
            return "\(path): cannot list the folder: \(reason)"
        case let .emptySplit(folder, suffixes):
            return "\(folder): no images (expected files ending in \(suffixes.joined(separator: ", ")))"
        case let .badSamples(report):
            var lines = ["dataset split '\(report.split)': \(counted(report.problems.count, "problem")) in \(counted(report.imageCount, "image")) (\(report.imageFolder)) and \(counted(report.maskCount, "mask")) (\(report.maskFolder)):"]
            lines += report.problemListing
            lines.append("Fix or remove these files, or set skip_bad_samples: true to drop the bad samples.")
            return lines.joined(separator: "\n")
        case let .noUsableSamples(report):
            return (["dataset split '\(report.split)': no usable samples left after dropping bad ones (\(counted(report.problems.count, "problem"))):"]
                    + report.problemListing).joined(separator: "\n")
        case let .badSample(file, reason):
            return "\(file): \(reason)"
        }
    }
}
