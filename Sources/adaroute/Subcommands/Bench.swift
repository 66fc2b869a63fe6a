import AdaRun
import AdaTensor
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Measure the engine's speed.", subcommands: [Gemm.self])
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
