import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Fine-tune a ViT for segmentation (no arguments: the bundled quickstart).",
            discussion: "Outputs go to output.dir (default runs/<config name>): config.yaml, metrics.jsonl, curves.png, checkpoints/.")

        @Option(help: "YAML config (default: configs/quickstart.yaml).")
        var config: String?

        @Option(help: "Continue the run in this directory from its latest checkpoint (uses its saved config).")
        var resume: String?

        @Option(name: .customLong("set"), help: "Override a config key, e.g. --set train.lr=3e-4 (repeatable).")
        var overrides: [String] = []

        @Option(name: .customLong("init-from"), help: "Start from this run's adapters (sets init.from; init.mode chooses full, mhr_z or mhr_mu).")
        var initFrom: String?

        @Option(help: "Run directory (overrides output.dir).")
        var output: String?

        @Option(help: "Threads for the kernels and GEMMs (default: ADAROUTE_THREADS or all cores).")
        var threads: Int?

        func run() throws {
            do {
                var overrides = self.overrides + (threads.map { ["train.threads=\($0)"] } ?? [])
                if let initFrom {
                    guard resume == nil else { throw ValidationError("--init-from starts a new run; --resume continues one (it already holds its weights)") }
                    overrides.append("init.from=\(initFrom)")
                }
                let summary: TrainingSummary
                if let resume {
                    let loaded = try ConfigLoader.load(path: URL(fileURLWithPath: resume).appendingPathComponent("config.yaml").path, overrides: overrides)
                    summary = try TrainJob.run(loaded, runDirectory: resume, resume: true, changedOnResume: !overrides.isEmpty)
                } else {
                    let path = config ?? "configs/quickstart.yaml"
                    let loaded = try ConfigLoader.load(path: path, overrides: overrides)
                    let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
                    // An explicit --output must be new; the config's default directory gets a free suffix
                    // (runs/quickstart, runs/quickstart-2, …) so re-running a command never fails or overwrites.
                    let directory = output ?? TrainJob.freeDirectory(loaded.config.output.dir ?? "runs/\(stem)")
                    summary = try TrainJob.run(loaded, runDirectory: directory, resume: false)
                }
                print(TrainJob.describe(summary))
            } catch {
                FileHandle.standardError.write(Data("adaroute train: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
