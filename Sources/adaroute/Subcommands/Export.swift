import AdaModels
import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Export: ParsableCommand {
        @OptionGroup var model: CheckpointOptions

        static let configuration = CommandConfiguration(
            abstract: "Write a whole model (backbone + adapters + head) as one safetensors file in the reference naming.",
            discussion: "Names: timm's for the ViT, adapters.{i}.*, expert.*, head.* — a PyTorch user loads it by name. The structure and the run's configuration are stored in the file's metadata, so `adaroute eval/predict --checkpoint FILE` accept it alone.")



        @Option(help: "Output file.")
        var out: String

        @Flag(help: "Fold LoRA updates into the frozen weights (a plain ViT + head file, like PEFT's merge_and_unload).")
        var merge = false


        func run() throws {
            do {
                let loaded = try model.load(merge: merge)
                let size = try ExportJob.run(loaded, merge: merge, to: out)
                print("wrote \(out): \(loaded.model.stateDict().count) tensors, \(loaded.model.parameterCount().formatted()) parameters, \(String(format: "%.1f", Double(size) / 1_048_576)) MiB")
            } catch {
                FileHandle.standardError.write(Data("adaroute export: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
