import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Eval: ParsableCommand {
        @OptionGroup var model: CheckpointOptions

        static let configuration = CommandConfiguration(
            abstract: "mIoU / mAcc / aAcc and a per-class table of a checkpoint on a dataset split.")



        @Option(help: "Dataset root (overrides data.root; with several datasets, of the one --dataset names).")
        var data: String?

        @Option(help: "Multi-dataset models: evaluate only this dataset (default: all of them).")
        var dataset: String?

        @Option(help: "Split folder name (default: eval.split, else data.val_split).")
        var split: String?

        @Option(help: "Inference mode: whole or slide (default: eval.mode).")
        var mode: String?

        @Flag(help: "Horizontal-flip test-time augmentation.")
        var flip = false


        @Option(help: "Write the metrics as JSON here (default: <run>/eval/<split>.json for a run directory).")
        var json: String?

        @Option(name: .customLong("set"), help: "Override a config key (repeatable).")
        var overrides: [String] = []


        func run() throws {
            do {
                let loaded = try model.load(overrides: overrides)
                let evalMode = try mode.map { text -> EvalMode in
                    guard let m = EvalMode(rawValue: text) else { throw ValidationError("--mode must be whole or slide, got '\(text)'") }
                    return m
                }
                var jsonOut = json
                let isRun = FileManager.default.fileExists(atPath: model.checkpoint + "/config.yaml")
                if jsonOut == nil && isRun {
                    let splitName = split ?? loaded.config?.eval.split ?? loaded.config?.data.tasks.first?.dataset.valSplit ?? "val"
                    jsonOut = model.checkpoint + "/eval/\(splitName).json"
                }
                let report = try EvalJob.run(loaded, dataRoot: data, split: split, mode: evalMode, flip: flip ? true : nil,
                                             jsonOut: jsonOut, dataset: dataset) { done, total in
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
