import AdaData
import AdaIO
import AdaModels
import AdaNN
import AdaRun
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// Two tiny datasets (3 and 2 classes) trained together with MHR, and the `--init-from` transfer modes.
@Suite("Multi-dataset training and --init-from", .serialized)
struct MultiDatasetTrainingTests {
    static let model = """
        model: {backbone: vit_tiny_patch16, embed_dim: 32, depth: 2, heads: 2, patch_size: 8, image_size: [32, 32], drop_path: 0.1}
        """

    static func multiYAML(_ dir: URL, iterations: Int = 6) -> String {
        """
        \(model)
        adapter: {method: mhr, mhr: {skills: 2, heads: 2, rank: 2}}
        data:
          pipeline: {crop: [32, 32], scale: [64, 32], ratio_range: [0.75, 1.5]}
          datasets:
            - {name: street, root: \(dir.path)/a, classes: [a, b, c]}
            - {name: em, root: \(dir.path)/b, classes: [x, y], weight: 2}
        train: {iterations: \(iterations), batch_size: 4, lr: 0.01, warmup_iters: 2, eval_every: 3, checkpoint_every: 2, log_every: 1, seed: 5, threads: 2, workers: 2}
        """
    }

    /// A run on dataset c (2 classes) that starts from `source`.
    static func transferYAML(_ dir: URL, source: String, mode: String, method: String = "mhr", seed: Int = 5) -> String {
        """
        \(model)
        adapter: {method: \(method), mhr: {skills: 2, heads: 2, rank: 2}}
        data:
          root: \(dir.path)/c
          classes: [background, object]
          pipeline: {crop: [32, 32], scale: [64, 32], ratio_range: [0.75, 1.5]}
        train: {iterations: 4, batch_size: 2, lr: 0.01, warmup_iters: 0, eval_every: 0, checkpoint_every: 2, log_every: 1, seed: \(seed), threads: 2, workers: 2}
        init: {from: \(source), mode: \(mode)}
        """
    }

    func load(_ yaml: String, in dir: URL, name: String = "run.yaml") throws -> LoadedConfig {
        let path = dir.appendingPathComponent(name).path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigLoader.load(path: path)
    }

    func datasets() throws -> URL {
        let dir = Fixtures.temporaryDirectory()
        try makeTinyDataset(in: dir.appendingPathComponent("a"), train: 6, classes: 3)
        try makeTinyDataset(in: dir.appendingPathComponent("b"), train: 3, seed: 4, classes: 2)
        try makeTinyDataset(in: dir.appendingPathComponent("c"), train: 4, seed: 6, classes: 2)
        return dir
    }

    func values(_ model: SegmentationModel, _ filter: (String) -> Bool) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: (model.namedParameters() + model.namedBuffers()).filter { filter($0.0) }.map { ($0.0, $0.1.values) })
    }

    @Test func multiDatasetRunTrainsValidatesEvaluatesAndResumes() throws {
        let dir = try datasets()
        let loaded = try load(Self.multiYAML(dir, iterations: 6), in: dir)
        let straightDir = dir.appendingPathComponent("straight").path
        let straight = try TrainJob.run(loaded, runDirectory: straightDir, resume: false, interactive: false)
        #expect(straight.iterations == 6 && straight.lastLoss.isFinite)

        // Validation logs every dataset's mIoU and their mean.
        let log = try MetricsLog(url: URL(fileURLWithPath: straightDir + "/metrics.jsonl")).records
        let vals = log.filter { $0.kind == "val" }
        #expect(vals.count == 2)
        for record in vals {
            let per = try #require(record.perDataset)
            #expect(per.keys.sorted() == ["em", "street"])
            #expect(abs(record.mIoU! - (per["em"]! + per["street"]!) / 2) < 1e-9)
        }

        // The checkpoint carries both heads and two routing rows; the spec names the tasks.
        let model = try ModelLoading.load(checkpoint: straightDir, config: nil)
        #expect(model.spec.tasks.map(\.name) == ["street", "em"] && model.model.heads.map(\.classes) == [3, 2])
        let checkpoint = try SafeTensorsFileNames.names(straightDir + "/checkpoints/latest/adapter_model.safetensors")
        #expect(checkpoint.contains("heads.0.weight") && checkpoint.contains("heads.1.weight"))
        #expect(MHR.adapters(in: model.model.backbone).allSatisfy { $0.2.routing.logits.shape[0] == 2 })

        // eval: every dataset (one JSON each), or one by name; --data needs --dataset.
        let report = try EvalJob.run(model, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: straightDir + "/eval/val.json")
        #expect(report.datasets.map(\.name) == ["street", "em"])
        #expect(report.datasets.map { $0.result.confusion.classes } == [3, 2])
        #expect(abs(100 * report.datasets[1].result.metrics.meanIoU - vals.last!.perDataset!["em"]!) < 1e-9)
        for name in ["street", "em"] { #expect(FileManager.default.fileExists(atPath: straightDir + "/eval/val.\(name).json")) }
        #expect(report.text.contains("mIoU per dataset"))
        let one = try EvalJob.run(model, dataRoot: dir.appendingPathComponent("b").path, split: nil, mode: nil, flip: nil, jsonOut: nil, dataset: "em")
        #expect(one.datasets.map(\.name) == ["em"])
        #expect { try EvalJob.run(model, dataRoot: dir.path, split: nil, mode: nil, flip: nil, jsonOut: nil) } throws: { "\($0)".contains("--dataset") }
        #expect { try EvalJob.run(model, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: nil, dataset: "nope") } throws: {
            "\($0)".contains("street, em")
        }

        // predict needs the dataset of a multi-task model and uses its head.
        let image = dir.appendingPathComponent("b/images/val/s0.png").path
        #expect { try PredictJob.run(model, images: [image], options: PredictOptions(outputDirectory: dir.appendingPathComponent("p").path)) } throws: {
            "\($0)".contains("--dataset")
        }
        var options = PredictOptions(outputDirectory: dir.appendingPathComponent("p").path)
        options.dataset = "em"
        let written = try PredictJob.run(model, images: [image], options: options)
        let mask = try ImageCodecs.decodeMask(path: written[0])
        #expect(mask.labels.allSatisfy { $0 < 2 })

        // Kill after 3 steps, resume: the same weights and curve as the uninterrupted run.
        let runB = dir.appendingPathComponent("interrupted").path
        let first = try Trainer(loaded: loaded, runDirectory: runB, interactive: false)
        first.stopAfter = 3
        _ = try first.run(resume: false)
        let resumed = try Trainer(loaded: try ConfigLoader.load(path: runB + "/config.yaml"), runDirectory: runB, interactive: false)
        _ = try resumed.run(resume: true)
        let again = try ModelLoading.load(checkpoint: runB, config: nil, which: "latest", merge: false)
        let reference = try ModelLoading.load(checkpoint: straightDir, config: nil, which: "latest", merge: false)
        #expect(values(again.model) { _ in true } == values(reference.model) { _ in true })
        let logB = try MetricsLog(url: URL(fileURLWithPath: runB + "/metrics.jsonl")).records
        #expect(logB.filter { $0.kind == "train" }.map(\.loss) == log.filter { $0.kind == "train" }.map(\.loss))
    }

    func multiRun(_ dir: URL) throws -> String {
        let run = dir.appendingPathComponent("multi").path
        _ = try TrainJob.run(try load(Self.multiYAML(dir, iterations: 4), in: dir, name: "multi.yaml"), runDirectory: run, resume: false, interactive: false)
        return run
    }

    /// MHR-z: the inventories are copied and stay frozen; only one new routing row per layer and the new head train.
    @Test func mhrZTrainsOnlyRoutingAndHeadOverTheCopiedInventory() throws {
        let dir = try datasets()
        let source = try multiRun(dir)
        let sourceModel = try ModelLoading.load(checkpoint: source, config: nil, merge: false).model
        let inventory = values(sourceModel) { $0.hasSuffix("lora_a") || $0.hasSuffix("lora_b") }
        #expect(!inventory.isEmpty)

        let run = dir.appendingPathComponent("z").path
        let trainer = try Trainer(loaded: try load(Self.transferYAML(dir, source: source, mode: "mhr_z"), in: dir), runDirectory: run, interactive: false)
        var routingAtStart: [String: [Float]] = [:]
        trainer.onSetup = { model in routingAtStart = self.values(model) { $0.hasSuffix("module_logits") } }
        _ = try trainer.run(resume: false)
        let model = trainer.model!
        #expect(Set(model.trainableParameters().map(\.0)).allSatisfy { $0.hasSuffix("module_logits") || $0.hasPrefix("head.") })
        #expect(values(model) { $0.hasSuffix("lora_a") || $0.hasSuffix("lora_b") } == inventory)
        #expect(routingAtStart.values.allSatisfy { $0.count == 2 * 2 && $0.allSatisfy { abs($0) <= 1e-3 } }) // one row, U(±1e-3)
        #expect(values(model) { $0.hasSuffix("module_logits") } != routingAtStart) // and it trained

        // The frozen inventory is part of the checkpoint: eval from the run directory rebuilds the model.
        let names = try SafeTensorsFileNames.names(run + "/checkpoints/latest/adapter_model.safetensors")
        #expect(names.contains { $0.hasSuffix("lora_a") })
        let reloaded = try ModelLoading.load(checkpoint: run, config: nil, which: "latest", merge: false)
        #expect(values(reloaded.model) { $0.hasSuffix("lora_a") || $0.hasSuffix("lora_b") } == inventory)
        _ = try EvalJob.run(reloaded, dataRoot: nil, split: nil, mode: nil, flip: nil, jsonOut: nil)
    }

    /// MHR-μ: each inventory becomes one LoRA (A and B averaged over the skills) and the run is a LoRA run.
    @Test func mhrMuStartsFromTheCollapsedLoRAAndSavesALoRASpec() throws {
        let dir = try datasets()
        let source = try multiRun(dir)
        let collapsed = try ModelLoading.load(checkpoint: source, config: nil, merge: false).model
        MHR.collapseToLoRA(collapsed.backbone)
        let expected = values(collapsed) { $0.hasSuffix("lora_A") || $0.hasSuffix("lora_B") }
        #expect(!expected.isEmpty)

        let run = dir.appendingPathComponent("mu").path
        let trainer = try Trainer(loaded: try load(Self.transferYAML(dir, source: source, mode: "mhr_mu"), in: dir), runDirectory: run, interactive: false)
        var atStart: [String: [Float]] = [:]
        trainer.onSetup = { model in atStart = self.values(model) { $0.hasSuffix("lora_A") || $0.hasSuffix("lora_B") } }
        _ = try trainer.run(resume: false)
        #expect(atStart == expected)
        #expect(MHR.adapters(in: trainer.model!.backbone).isEmpty)
        let reloaded = try ModelLoading.load(checkpoint: run, config: nil, which: "latest", merge: false)
        #expect(reloaded.spec.adapter.method == .lora && reloaded.spec.adapter.lora.rank == 2)
        // Resume rebuilds the LoRA structure from the saved config.
        let resumed = try Trainer(loaded: try ConfigLoader.load(path: run + "/config.yaml", overrides: ["train.iterations=6"]),
                                  runDirectory: run, interactive: false)
        #expect(try resumed.run(resume: true).iterations == 6)
    }

    @Test func transferRefusesAnotherBackboneOrMethod() throws {
        let dir = try datasets()
        let source = try multiRun(dir)
        // Another seed draws another random backbone: the inventory was not trained on it.
        let otherSeed = try Trainer(loaded: try load(Self.transferYAML(dir, source: source, mode: "full", seed: 6), in: dir),
                                    runDirectory: dir.appendingPathComponent("seed").path, interactive: false)
        #expect { try otherSeed.run(resume: false) } throws: { "\($0)".contains("frozen backbone differs") && "\($0)".contains("train.seed") }
        // MHR-z needs an MHR source.
        let lora = dir.appendingPathComponent("lora").path
        _ = try TrainJob.run(try load(tinyConfigYAML(root: dir.path + "/c", method: "lora", iterations: 2)
                                        .replacingOccurrences(of: "classes: [a, b, c]", with: "classes: [background, object]"), in: dir, name: "lora.yaml"),
                             runDirectory: lora, resume: false, interactive: false)
        let fromLoRA = try Trainer(loaded: try load(Self.transferYAML(dir, source: lora, mode: "mhr_z"), in: dir),
                                   runDirectory: dir.appendingPathComponent("z").path, interactive: false)
        #expect { try fromLoRA.run(resume: false) } throws: { "\($0)".contains("adapter.method mhr") }
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("z/config.yaml").path))
    }
}

/// Tensor names of a safetensors file.
enum SafeTensorsFileNames {
    static func names(_ path: String) throws -> [String] { try SafeTensorsFile(path: path).names }
}
