import AdaRun
import AdaTensor
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the engine's speed.", subcommands: [Gemm.self, DataLoading.self])
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
