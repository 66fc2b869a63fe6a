import AdaRun
import AdaTensor
import ArgumentParser

/// The model-selecting options shared by eval, predict and export.
struct CheckpointOptions: ParsableArguments {
    @Option(help: "A run directory, an adapter checkpoint folder (with --config) or a full-model export.")
    var checkpoint: String

    @Option(help: "YAML config (default: the run directory's config.yaml).")
    var config: String?

    @Option(help: "Which checkpoint of a run directory: best or latest (default: best if present).")
    var which: String?

    @Option(help: "Threads for the kernels and GEMMs (default: ADAROUTE_THREADS or all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be ≥ 1, got \(threads)") }
        if let which, !["best", "latest"].contains(which) { throw ValidationError("--which must be best or latest, got '\(which)'") }
    }

    /// Applies --threads and loads the model.
    func load(overrides: [String] = [], merge: Bool = true) throws -> LoadedModel {
        if let threads { Runtime.setThreads(threads) }
        return try ModelLoading.load(checkpoint: checkpoint, config: config, overrides: overrides, which: which, merge: merge)
    }
}
