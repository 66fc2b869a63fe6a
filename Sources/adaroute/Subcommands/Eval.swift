import AdaRun
import AdaTensor
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Eval: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "mIoU / mAcc / aAcc and a per-class table of a checkpoint on a dataset split.")

        @Option(help: "A run directory, an adapter checkpoint folder (with --config) or a full-model export.")
        var checkpoint: String

        @Option(help: "YAML config (default: the run directory's config.yaml).")
        var config: String?

        @Option(help: "Dataset root (overrides data.root).")
        var data: String?

        @Option(help: "Split folder name (default: eval.split, else data.val_split).")
        var split: String?

        @Option(help: "Inference mode: whole or slide (default: eval.mode).")
        var mode: String?

        @Flag(help: "Horizontal-flip test-time augmentation.")
        var flip = false

        @Option(help: "Which checkpoint of a run directory: best or latest (default: best if present).")
        var which: String?

        @Option(help: "Write the metrics as JSON here (default: <run>/eval/<split>.json for a run directory).")
        var json: String?

        @Option(name: .customLong("set"), help: "Override a config key (repeatable).")
        var overrides: [String] = []

        @Option(help: "Threads for the kernels and OpenBLAS (default: ADAROUTE_THREADS or all cores).")
        var threads: Int?

        func run() throws {
            do {
                if let threads {
                    guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
                    Runtime.setThreads(threads)
                }
                let loaded = try ModelLoading.load(checkpoint: checkpoint, config: config, overrides: overrides, which: which)
                let evalMode = try mode.map { text -> EvalMode in
                    guard let m = EvalMode(rawValue: text) else { throw ValidationError("--mode must be whole or slide, got '\(text)'") }
                    return m
                }
                var jsonOut = json
                let isRun = FileManager.default.fileExists(atPath: checkpoint + "/config.yaml")
                if jsonOut == nil && isRun {
                    let splitName = split ?? loaded.config?.eval.split ?? loaded.config?.data.dataset.valSplit ?? "val"
                    jsonOut = checkpoint + "/eval/\(splitName).json"
                }
                let report = try EvalJob.run(loaded, dataRoot: data, split: split, mode: evalMode, flip: flip ? true : nil,
                                             jsonOut: jsonOut) { done, total in
                    if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[2Kevaluating \(done)/\(total)".utf8)) }
                }
                if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
                print(report.text)
            } catch let error as ValidationError {
                throw error
            } catch {
                FileHandle.standardError.write(Data("adaroute eval: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
