import AdaData
import AdaIO
import AdaModels
import AdaRun
import AdaTestSupport
import Foundation
import Testing

/// train → eval → predict → export on the bundled CamVid demo images (data/camvid-mini), as the CLI runs them.
@Suite("End to end", .serialized)
struct EndToEndTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func trainEvalPredictExportOnCamVidImages() throws {
        let dir = Fixtures.temporaryDirectory()
        let configPath = dir.appendingPathComponent("e2e.yaml").path
        try """
            _base_: \(Self.repo.path)/configs/quickstart.yaml
            model: {embed_dim: 64, depth: 2, heads: 2, image_size: [64, 64]}
            adapter: {adaroute: {rank: 8, kernel_sizes: [3, 5]}}
            data:
              root: \(Self.repo.path)/data/camvid-mini
              pipeline: {crop: [64, 64], scale: [160, 96], test_scale: [160, 96]}
            train: {iterations: 6, batch_size: 4, eval_every: 6, checkpoint_every: 3, log_every: 2, warmup_iters: 2}
            """.write(toFile: configPath, atomically: true, encoding: .utf8)
        let run = dir.appendingPathComponent("run").path
        let summary = try TrainJob.run(try ConfigLoader.load(path: configPath), runDirectory: run, resume: false, interactive: false)
        #expect(summary.iterations == 6 && summary.lastLoss.isFinite && summary.bestMIoU != nil)
        for file in ["config.yaml", "metrics.jsonl", "curves.png", "checkpoints/best/adapter_model.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: run + "/" + file), "\(file) missing")
        }
        let curves = try ImageCodecs.decodeImage(path: run + "/curves.png")
        #expect(curves.width == 960 && curves.height == 400)

        // eval from the run directory reproduces the validation score of the last iteration
        let loaded = try ModelLoading.load(checkpoint: run, config: nil)
        let report = try EvalJob.run(loaded, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: run + "/eval/val.json")
        #expect(abs(100 * report.result.metrics.meanIoU - summary.bestMIoU!) < 1e-9)
        #expect(report.result.images == 12 && report.text.contains("mIoU"))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/eval/val.json"))) as? [String: Any]
        #expect(json?["mIoU"] != nil)

        // predict writes one mask per image at the image's original size (240×180), overlays too
        let images = try SegmentationDataset.imagePaths(in: Self.repo.path + "/data/camvid-mini/images/val").prefix(2)
        var options = PredictOptions(outputDirectory: dir.appendingPathComponent("pred").path)
        options.overlay = true
        let masks = try PredictJob.run(loaded, images: Array(images), options: options)
        #expect(masks.count == 2)
        for mask in masks {
            let decoded = try ImageCodecs.decodeMask(path: mask)
            #expect(decoded.width == 240 && decoded.height == 180 && decoded.labels.allSatisfy { $0 < 11 })
        }
        // an image of another size works too (the grid and position embedding adapt)
        let odd = dir.appendingPathComponent("odd.png").path
        try ImageCodecs.encodePNG(pixels: [UInt8](repeating: 90, count: 77 * 50 * 3), width: 77, height: 50, kind: .rgb)
            .write(to: URL(fileURLWithPath: odd))
        let oddMask = try PredictJob.run(loaded, images: [odd], options: options)
        let oddDecoded = try ImageCodecs.decodeMask(path: oddMask[0])
        #expect(oddDecoded.width == 77 && oddDecoded.height == 50)

        // a full export evaluates to the same numbers
        let exported = dir.appendingPathComponent("model.safetensors").path
        try ModelFiles.exportFull(loaded.model, spec: loaded.spec, to: exported)
        let fromExport = try ModelLoading.load(checkpoint: exported, config: run + "/config.yaml")
        let again = try EvalJob.run(fromExport, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: nil)
        #expect(again.result.confusion == report.result.confusion)
        // `export` carries the run's configuration: eval and predict on the file alone use its classes,
        // palette and test pipeline, so they agree with the run directory.
        let standalone = dir.appendingPathComponent("standalone.safetensors").path
        try ExportJob.run(try ModelLoading.load(checkpoint: run, config: nil), merge: true, to: standalone)
        let alone = try ModelLoading.load(checkpoint: standalone, config: nil)
        #expect(alone.config?.data == loaded.config?.data && alone.config?.eval == loaded.config?.eval)
        #expect(try EvalJob.run(alone, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: nil).result.confusion == report.result.confusion)
        var aloneOptions = PredictOptions(outputDirectory: dir.appendingPathComponent("pred-alone").path)
        aloneOptions.overlay = true
        for (a, b) in zip(try PredictJob.run(alone, images: Array(images), options: aloneOptions), masks) {
            #expect(try Data(contentsOf: URL(fileURLWithPath: a)) == Data(contentsOf: URL(fileURLWithPath: b)), "\(a) differs from \(b)")
        }
    }

    @Test func badInputsGiveClearErrors() throws {
        let dir = Fixtures.temporaryDirectory()
        #expect { try ModelLoading.load(checkpoint: dir.appendingPathComponent("nothing").path, config: nil) } throws: {
            "\($0)".contains("nothing")
        }
        #expect { try ModelLoading.load(checkpoint: dir.path, config: nil) } throws: { "\($0)".contains("config") }
        #expect { try PredictJob.imageFiles([dir.appendingPathComponent("missing.jpg").path]) } throws: { "\($0)".contains("missing.jpg") }
    }
}
