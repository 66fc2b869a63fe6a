import AdaModels
import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Export: ParsableCommand {
        @OptionGroup var model: CheckpointOptions

        static let configuration = CommandConfiguration(
            abstract: "Write a whole model (backbone + adapters + head) as one safetensors file in the reference naming.",
            discussion: "Names: timm's for the ViT, adapters.{i}.*, expert.*, head.* — a PyTorch user loads it by name. The structure is stored in the file's metadata, so `adaroute eval/predict --checkpoint FILE` accept it.")



        @Option(help: "Output file.")
        var out: String

        @Flag(help: "Fold LoRA updates into the frozen weights (a plain ViT + head file, like PEFT's merge_and_unload).")
        var merge = false


        func run() throws {
            do {
                let loaded = try model.load(merge: merge)
                var spec = loaded.spec
                // PaCA always exports merged: its trained columns live in the weights, no adapter is left.
                if spec.adapter.method == .paca { _ = PaCA.merge(loaded.model.backbone) }
                if (merge && spec.adapter.method == .lora) || spec.adapter.method == .paca {
                    spec.adapter.method = .linear // nothing left to inject on rebuild
                }
                try ModelFiles.exportFull(loaded.model, spec: spec, to: out)
                let size = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
                print("wrote \(out): \(loaded.model.stateDict().count) tensors, \(loaded.model.parameterCount().formatted()) parameters, \(String(format: "%.1f", Double(size) / 1_048_576)) MiB")
            } catch {
                FileHandle.standardError.write(Data("adaroute export: \(error)\n".utf8))
                throw ExitCode.failure
            }
        }
    }
}
