import AdaRun
import AdaTensor
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Predict: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Segment images: one palette PNG mask per image at its original size (optionally an overlay and probabilities).")

        @Option(help: "A run directory, an adapter checkpoint folder (with --config) or a full-model export.")
        var checkpoint: String

        @Argument(help: "Image files or folders of images (JPEG/PNG).")
        var images: [String]

        @Option(help: "Output folder.")
        var out: String

        @Option(help: "YAML config (default: the run directory's config.yaml).")
        var config: String?

        @Flag(help: "Also write <name>_overlay.png: the image blended with the class colours.")
        var overlay = false

        @Flag(name: .customLong("save-probs"), help: "Also write <name>_probs.safetensors: per-class probabilities [K, H, W].")
        var saveProbs = false

        @Option(help: "Inference mode: whole or slide (default: the config's eval.mode).")
        var mode: String?

        @Flag(help: "Horizontal-flip test-time augmentation.")
        var flip = false

        @Option(help: "Which checkpoint of a run directory: best or latest (default: best if present).")
        var which: String?

        func validate() throws {
            if images.isEmpty { throw ValidationError("give at least one image or folder") }
            if let mode, EvalMode(rawValue: mode) == nil { throw ValidationError("--mode must be whole or slide, got '\(mode)'") }
        }

        @Option(help: "Threads for the kernels and OpenBLAS (default: ADAROUTE_THREADS or all cores).")
        var threads: Int?

        func run() throws {
            do {
                if let threads {
                    guard threads >= 1 else { throw ValidationError("--threads must be ≥ 1") }
                    Runtime.setThreads(threads)
                }
                let loaded = try ModelLoading.load(checkpoint: checkpoint, config: config, which: which)
                var options = PredictOptions(outputDirectory: out)
                options.overlay = overlay
                options.saveProbabilities = saveProbs
                options.mode = mode.flatMap(EvalMode.init(rawValue:))
                options.flip = flip ? true : nil
                let start = Date()
                let written = try PredictJob.run(loaded, images: images, options: options) { done, total, file in
                    if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[2K\(done)/\(total) \(file)".utf8)) }
                }
                if isatty(STDERR_FILENO) != 0 { FileHandle.standardError.write(Data("\r\u{1B}[2K".utf8)) }
                let seconds = Date().timeIntervalSince(start)
                print("wrote \(written.count) masks to \(out) (\(String(format: "%.2f", Double(written.count) / max(seconds, 1e-9))) images/s)")
            } catch {
                FileHandle.standardError.write(Data("adaroute predict: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
