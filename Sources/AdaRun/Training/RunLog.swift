// What a run tells the user and records: a JSONL metrics log in the run directory (one object per
// line: training windows and validations), and progress on the terminal — a live bar with throughput
// and ETA on a TTY, plain periodic lines otherwise (CI logs, files).
import Foundation

public struct LogRecord: Codable, Equatable, Sendable {
    public var kind: String            // "train" or "val"
    public var iteration: Int
    public var loss: Double? = nil     // mean over the logging window
    public var lr: Double? = nil
    public var imagesPerSecond: Double? = nil
    public var gradNorm: Double? = nil
    public var mIoU: Double? = nil
    public var mAcc: Double? = nil
    public var aAcc: Double? = nil
    /// Multi-dataset validation: mIoU of each dataset (`miou` is their mean).
    public var perDataset: [String: Double]? = nil

    enum CodingKeys: String, CodingKey {
        case kind, iteration, loss, lr, imagesPerSecond = "images_per_s", gradNorm = "grad_norm", mIoU = "miou", mAcc = "macc", aAcc = "aacc"
        case perDataset = "miou_per_dataset"
    }
}

public final class MetricsLog {
    public let url: URL
    public private(set) var records: [LogRecord] = []

    /// Opens (or creates) the log; with `keepThrough`, drops records after that iteration (written by a
    /// run that was killed after its last checkpoint) so a resumed run continues one consistent curve.
    public init(url: URL, keepThrough: Int? = nil) throws {
        self.url = url
        if let data = try? Data(contentsOf: url) {
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") where !line.isEmpty {
                if let r = try? JSONDecoder().decode(LogRecord.self, from: Data(line.utf8)) { records.append(r) }
            }
        }
        if let keepThrough { records.removeAll { $0.iteration > keepThrough } }
        try rewrite()
    }

    private func rewrite() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let text = try records.map { String(decoding: try encoder.encode($0), as: UTF8.self) }.joined(separator: "\n")
        try Data((text.isEmpty ? "" : text + "\n").utf8).write(to: url, options: .atomic)
    }

    public func append(_ record: LogRecord) throws {
        records.append(record)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let line = String(decoding: try encoder.encode(record), as: UTF8.self) + "\n"
        if let handle = try? FileHandle(forWritingTo: url) {
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(line.utf8))
        } else {
            try Data(line.utf8).write(to: url)
        }
    }
}

/// Terminal progress: `\r`-updated bar on a TTY, a line per report otherwise.
public final class ProgressReporter {
    public let interactive: Bool
    private let total: Int
    private let every: Int
    private var lastDraw = 0.0

    /// `every`: without a TTY, print one line per this many iterations.
    public init(total: Int, every: Int = 10, interactive: Bool = isatty(STDERR_FILENO) != 0) {
        self.total = total
        self.every = max(every, 1)
        self.interactive = interactive
    }

    public func update(iteration: Int, loss: Double, lr: Double, imagesPerSecond: Double, secondsLeft: Double, force: Bool = false) {
        let now = Date().timeIntervalSince1970
        let text = String(format: "iter %d/%d  loss %.4f  lr %.2e  %.1f img/s  ETA %@", iteration, total, loss, lr,
                          imagesPerSecond, Self.duration(secondsLeft))
        if interactive {
            guard force || now - lastDraw > 0.2 || iteration == total else { return }
            lastDraw = now
            let width = 24, filled = total > 0 ? width * iteration / total : width
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data("\r\u{1B}[2K[\(bar)] \(text)".utf8))
        } else if force || iteration % every == 0 || iteration == total {
            print(text)
            fflush(stdout)
        }
    }

    /// A line that must not be overwritten by the bar (validation results, checkpoints, warnings).
    public func message(_ text: String) {
        if interactive { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
        print(text)
        fflush(stdout)
    }

    public func finish() { if interactive { FileHandle.standardError.write(Data("\n".utf8)) } }

    public static func duration(_ seconds: Double) -> String {
        guard seconds.isFinite, seconds >= 0 else { return "--:--" }
        let s = Int(seconds.rounded())
        return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%02d:%02d", s / 60, s % 60)
    }
}
