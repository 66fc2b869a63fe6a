import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Predict: ParsableCommand {
        @OptionGroup var model: CheckpointOptions

        static let configuration = CommandConfiguration(
            abstract: "Segment images: one palette PNG mask per image at its original size (optionally an overlay and probabilities).")


        @Argument(help: "Image files or folders of images (JPEG/PNG).")
        var images: [String]

        @Option(help: "Output folder.")
        var out: String


        @Flag(help: "Also write <name>_overlay.png: the image blended with the class colours.")
        var overlay = false

        @Flag(name: .customLong("save-probs"), help: "Also write <name>_probs.safetensors: per-class probabilities [K, H, W].")
        var saveProbs = false

        @Option(help: "Inference mode: whole or slide (default: the config's eval.mode).")
        var mode: String?

        @Flag(help: "Horizontal-flip test-time augmentation.")
        var flip = false

        @Option(help: "Multi-dataset models: the dataset (task) whose head, classes and palette to use.")
        var dataset: String?


        func validate() throws {
            if images.isEmpty { throw ValidationError("give at least one image or folder") }
            if let mode, EvalMode(rawValue: mode) == nil { throw ValidationError("--mode must be whole or slide, got '\(mode)'") }
        }


        func run() throws {
            do {
                let loaded = try model.load()
                var options = PredictOptions(outputDirectory: out)
                options.overlay = overlay
                options.saveProbabilities = saveProbs
                options.mode = mode.flatMap(EvalMode.init(rawValue:))
                options.flip = flip ? true : nil
                options.dataset = dataset
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
