// `adaroute info FILE.safetensors [--metadata]`: list a safetensors file's tensors (formatting in
// AdaRun.TensorFileSummary). A malformed file prints the reader's error to stderr and exits 1.
import AdaRun
import ArgumentParser
import Foundation

extension AdaRouteCommand {
    struct Info: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the tensors of a safetensors file: name, dtype, shape, element count, totals.")

        @Argument(help: "The .safetensors file to inspect.")
        var file: String

        @Flag(help: "Also print the file's __metadata__ map.")
        var metadata = false

        func run() throws {
            let summary: String
            do {
                summary = try TensorFileSummary.text(path: file, includeMetadata: metadata)
            } catch {
                // The reader's message already names the file and tensor; usage help would only add noise.
                FileHandle.standardError.write(Data("adaroute info: \(error)\n".utf8))
                throw ExitCode.failure
            }
            print(summary, terminator: "")
        }
    }
}
