import AdaModels
import AdaRun
import AdaTensor
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the engine's speed.", subcommands: [Gemm.self, DataLoading.self, TrainStep.self, InferStep.self])
    }
}

extension AdaRouteCommand.Bench {
    struct Gemm: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "GFLOP/s of the engine's linear op next to raw cblas_sgemm, with 1 and all threads.")

        @Option(help: "Thread counts to measure (default: 1 and all cores).")
        var threads: [Int] = []

        @Option(help: "Timed repetitions per shape (median reported).")
        var repeats: Int = 7

        func run() throws {
            let counts = threads.isEmpty ? Array(Set([1, Runtime.defaultThreads])).sorted() : threads
            print("| shape M×K×N | threads | cblas_sgemm GFLOP/s | engine linear GFLOP/s | engine / cblas |")
            print("|---|---|---|---|---|")
            var worst = Double.infinity
            for t in counts {
                for shape in GemmShape.standard {
                    let row = GemmBenchmark.run(shape: shape, threads: t, repeats: repeats)
                    worst = min(worst, row.ratio)
                    print(String(format: "| %@ | %d | %.1f | %.1f | %.1f%% |", shape.description, t,
                                 row.rawGflops, row.engineGflops, 100 * row.ratio))
                }
            }
            print(String(format: "worst engine/cblas ratio: %.1f%%", 100 * worst))
        }
    }
}

extension AdaRouteCommand.Bench {
    struct DataLoading: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "data",
            abstract: "Images/s through decode + augment + batch (the data loader), with 1 and all threads.")

        @Option(help: "Dataset folder with images/<split> and masks/<split>.")
        var root: String = "../shared/data/camvid"

        @Option(help: "Split folder name.")
        var split: String = "train"

        @Option(help: "Square training crop side (smaller images are padded).")
        var crop: Int = 512

        @Option(help: "Batch size.")
        var batch: Int = 8

        @Option(help: "Thread counts to measure (default: 1 and all cores).")
        var threads: [Int] = []

        @Option(help: "Timed batches per thread count.")
        var batches: Int = 20

        func run() throws {
            let counts = threads.isEmpty ? Array(Set([1, Runtime.defaultThreads])).sorted() : threads
            let (source, transforms) = try DataBenchmark.pipeline(root: root, split: split, crop: crop)
            print("\(source.count) samples in \(root)/images/\(split), crop \(crop), batch \(batch), \(batches) batches")
            print("| threads | images | seconds | images/s | ms/batch | speed-up |")
            print("|---|---|---|---|---|---|")
            var baseline: Double?
            for t in counts {
                let row = try DataBenchmark.run(source: source, transforms: transforms, batchSize: batch, threads: t,
                                                batches: batches)
                let speedup = row.imagesPerSecond / (baseline ?? row.imagesPerSecond)
                if baseline == nil { baseline = row.imagesPerSecond }
                print(String(format: "| %d | %d | %.2f | %.1f | %.1f | %.2f× |", t, row.images, row.seconds,
                             row.imagesPerSecond, row.millisecondsPerBatch, speedup))
            }
        }
    }
}

/// Options shared by `bench train` and `bench infer`.
struct ModelBenchOptions: ParsableArguments {
    @Option(help: "Take the model (backbone, image size, classes, adapter, neck, head) from this run config instead of the options below.")
    var config: String?
    @Option(help: "ViT preset (vit_{tiny,small,base,large}_patch{16,14}).")
    var model = "vit_tiny_patch16"
    @Option(help: "Adapter method: adaroute, lora, adaptformer, mhr, paca, linear, full.")
    var method = "adaroute"
    @Option(help: "Square image size.")
    var image = 224
    @Option(help: "Batch size.")
    var batch = 8
    @Option(help: "Classes.")
    var classes = 150
    @Option(help: "Head: linear, setr_naive, upernet (upernet needs --neck).")
    var head = "linear"
    @Option(help: "Neck for the upernet head: none, sta, feature2pyramid.")
    var neck = "none"
    @Option(name: .customLong("head-channels"), help: "Hidden channels of the setr_naive/upernet head (and its auxiliary head).")
    var headChannels = 256
    @Option(name: .customLong("aux-weight"), help: "upernet: auxiliary FCN head loss weight (0 = none).")
    var auxWeight: Float = 0
    @Option(help: "AdaRoute rank.")
    var rank = 64
    @Option(name: .customLong("router-hidden"), help: "AdaRoute router hidden width.")
    var routerHidden = 16
    @Option(help: "AdaRoute kernel sizes, comma-separated (empty: token path).")
    var kernels = ""
    @Option(help: "Threads (default: all cores).")
    var threads: Int?
    @Option(help: "Untimed warm-up steps.")
    var warmup = 2
    @Option(help: "Timed steps (≥ 5 recommended).")
    var steps = 5

    func settings() throws -> ModelBenchmarkSettings {
        var s = ModelBenchmarkSettings()
        s.preset = model
        guard let m = AdapterMethodKind(rawValue: method) else { throw ValidationError("--method: unknown '\(method)'") }
        s.method = m
        guard let h = HeadKind(rawValue: head) else { throw ValidationError("--head: unknown '\(head)' (linear, setr_naive, upernet)") }
        guard let n = NeckKind(rawValue: neck) else { throw ValidationError("--neck: unknown '\(neck)' (none, sta, feature2pyramid)") }
        s.head = h; s.neck = n; s.headChannels = headChannels; s.auxWeight = auxWeight
        s.imageSize = image; s.batch = batch; s.classes = classes; s.rank = rank; s.routerHidden = routerHidden
        s.kernels = try kernels.split(separator: ",").map { text in
            guard let k = Int(text.trimmingCharacters(in: .whitespaces)), k > 0, k % 2 == 1 else { throw ValidationError("--kernels: '\(text)' is not an odd size") }
            return k
        }
        s.warmup = warmup; s.steps = max(steps, 1)
        if let config { s.fixedSpec = try ConfigLoader.load(path: config).config.modelSpec() }
        return s
    }

    func report(_ r: ModelBenchmarkResult, training: Bool) -> String {
        let t = r.seconds
        if let config {
            return String(format: "%@ %@ batch %d, %d threads: step median %.3f s (min %.3f, max %.3f), %.2f images/s, %.1f GFLOP/s (%.1f GFLOP/step), peak RSS %.2f GiB",
                          training ? "train" : "infer", config, batch, threads ?? Runtime.defaultThreads, t.median, t.min, t.max,
                          r.imagesPerSecond, r.gflops, r.gflopPerStep, Double(r.peakRSSBytes) / 1_073_741_824)
        }
        let decoder = head == "linear" ? "" : " + \(neck == "none" ? "" : neck + " + ")\(head) \(headChannels)ch\(auxWeight > 0 ? " + aux" : "")"
        return String(format: "%@ %@ %@%@ %d² batch %d, %d classes%@, %d threads: step median %.3f s (min %.3f, max %.3f), %.2f images/s, %.1f GFLOP/s (%.1f GFLOP/step), peak RSS %.2f GiB",
                      training ? "train" : "infer", model, method, decoder, image, batch, classes, kernels.isEmpty ? "" : ", kernels \(kernels)",
                      threads ?? Runtime.defaultThreads, t.median, t.min, t.max, r.imagesPerSecond, r.gflops, r.gflopPerStep,
                      Double(r.peakRSSBytes) / 1_073_741_824)
    }
}

extension AdaRouteCommand.Bench {
    struct TrainStep: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "train",
            abstract: "Time training steps (forward, loss, backward, AdamW) on synthetic batches.")
        @OptionGroup var options: ModelBenchOptions
        @Flag(help: "Also break one step down: forward phases (backbone, neck, head, loss) and backward time per op.")
        var profile = false
        func run() throws {
            let threads = options.threads ?? Runtime.defaultThreads
            let r = try ModelBenchmark.run(options.settings(), training: true, threads: threads)
            print(options.report(r, training: true))
            guard profile else { return }
            let p = try ModelBenchmark.profile(options.settings(), threads: threads, steps: options.steps)
            let ms = { (seconds: Double) in String(format: "%8.1f ms %5.1f %%", seconds * 1000, 100 * seconds / p.step) }
            print("profile (mean of \(options.steps) steps, \(String(format: "%.3f", p.step)) s/step):")
            for (phase, seconds) in p.forward { print("  forward  \(phase.padding(toLength: 26, withPad: " ", startingAt: 0)) \(ms(seconds))") }
            print("  backward \("(all ops)".padding(toLength: 26, withPad: " ", startingAt: 0)) \(ms(p.backwardTotal))")
            for op in p.backward.prefix(16) {
                print("    \("\(op.name) ×\(op.calls)".padding(toLength: 32, withPad: " ", startingAt: 0)) \(ms(op.seconds))")
            }
            print("  optimizer                           \(ms(p.optimizer))")
        }
    }

    struct InferStep: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "infer",
            abstract: "Time inference (no-grad forward with upsampled logits) on synthetic batches.")
        @OptionGroup var options: ModelBenchOptions
        func run() throws {
            let r = try ModelBenchmark.run(options.settings(), training: false, threads: options.threads ?? Runtime.defaultThreads)
            print(options.report(r, training: false))
        }
    }
}
