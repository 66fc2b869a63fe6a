// The adaroute executable: argument parsing and dispatch only; the work lives in AdaRun.
import ArgumentParser

@main
struct AdaRouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adaroute",
        abstract: "Fine-tune Vision Transformers for semantic segmentation on CPU with parameter-efficient adapters.",
        subcommands: [Train.self, Eval.self, Predict.self, Export.self, Bench.self, Info.self])
}
