import AdaData
import AdaModels
import AdaNN
import AdaRun
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// A tiny labelled dataset in the mmseg layout (random blocky masks, images whose colour follows the mask).
func makeTinyDataset(in dir: URL, train: Int = 6, val: Int = 2, width: Int = 48, height: Int = 32, seed: UInt64 = 3,
                     classes: Int = 3) throws {
    var rng = RandomGenerator(seed: seed)
    for (split, count) in [("train", train), ("val", val)] {
        for folder in ["images", "masks"] {
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("\(folder)/\(split)"), withIntermediateDirectories: true)
        }
        for i in 0..<count {
            var labels = [UInt8](repeating: 0, count: width * height)
            var pixels = [UInt8](repeating: 0, count: width * height * 3)
            for y in 0..<height {
                for x in 0..<width {
                    let label = UInt8(((x / 12) + (y / 8) + i) % classes)
                    labels[y * width + x] = (x + y) % 17 == 0 ? 255 : label
                    for c in 0..<3 { pixels[(y * width + x) * 3 + c] = UInt8(clamping: Int(label) * 80 + c * 20 + rng.int(below: 30)) }
                }
            }
            try ImageCodecs.encodePNG(pixels: pixels, width: width, height: height, kind: .rgb)
                .write(to: dir.appendingPathComponent("images/\(split)/s\(i).png"))
            try ImageCodecs.encodePNG(pixels: labels, width: width, height: height, kind: .gray)
                .write(to: dir.appendingPathComponent("masks/\(split)/s\(i).png"))
        }
    }
}

func tinyConfigYAML(root: String, method: String = "adaroute", iterations: Int = 6, extra: String = "") -> String {
    """
    model: {backbone: vit_tiny_patch16, embed_dim: 32, depth: 2, heads: 2, patch_size: 8, image_size: [32, 32], drop_path: 0.1}
    adapter: {method: \(method), adaroute: {rank: 4, router_hidden: 4, kernel_sizes: [3]}, adaptformer: {bottleneck: 8, dropout: 0.2},
              mhr: {skills: 2, heads: 2, rank: 2, relaxed_bernoulli: true}, paca: {rank: 4, alpha: 8}}
    data:
      root: \(root)
      classes: [a, b, c]
      pipeline: {crop: [32, 32], scale: [64, 32], ratio_range: [0.75, 1.5]}
    train: {iterations: \(iterations), batch_size: 2, lr: 0.01, warmup_iters: 2, eval_every: 0, checkpoint_every: 2, log_every: 1, seed: 5, threads: 2, workers: 2}
    \(extra)
    """
}

@Suite("Training runs", .serialized)
struct TrainingTests {
    func load(_ yaml: String, in dir: URL) throws -> LoadedConfig {
        let path = dir.appendingPathComponent("run.yaml").path
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigLoader.load(path: path)
    }

    func trainableValues(_ trainer: Trainer) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: trainer.model!.trainableParameters().map { ($0.0, $0.1.values) })
    }

    /// Kill after iteration 5 (the last checkpoint is at 4, the log already has 5), resume: the final
    /// weights and the whole loss curve are bit-identical to an uninterrupted run.
    @Test(arguments: ["adaroute", "adaptformer", "mhr", "paca"])
    func resumeReproducesTheUninterruptedRun(method: String) throws {
        let dir = Fixtures.temporaryDirectory()
        try makeTinyDataset(in: dir.appendingPathComponent("data"))
        let loaded = try load(tinyConfigYAML(root: dir.appendingPathComponent("data").path, method: method, iterations: 8), in: dir)

        let straight = try Trainer(loaded: loaded, runDirectory: dir.appendingPathComponent("straight").path, interactive: false)
        _ = try straight.run(resume: false)

        let runB = dir.appendingPathComponent("interrupted").path
        let first = try Trainer(loaded: loaded, runDirectory: runB, interactive: false)
        first.stopAfter = 5
        _ = try first.run(resume: false)
        let resumed = try Trainer(loaded: try ConfigLoader.load(path: runB + "/config.yaml"), runDirectory: runB, interactive: false)
        let summary = try resumed.run(resume: true)
        #expect(summary.iterations == 8)

        let a = trainableValues(straight), b = trainableValues(resumed)
        #expect(a.keys.sorted() == b.keys.sorted())
        for key in a.keys { #expect(a[key]! == b[key]!, "\(key) differs after resume") }
        let logA = try MetricsLog(url: URL(fileURLWithPath: dir.appendingPathComponent("straight/metrics.jsonl").path)).records
        let logB = try MetricsLog(url: URL(fileURLWithPath: runB + "/metrics.jsonl")).records
        #expect(logA.map(\.iteration) == Array(1...8) && logB.map(\.iteration) == Array(1...8))
        #expect(logA.map(\.loss) == logB.map(\.loss))
        #expect(logA.map(\.loss).allSatisfy { $0!.isFinite })
    }

    @Test func checkpointsAreAtomicFoldersWithLatestAndBestLinks() throws {
        let dir = Fixtures.temporaryDirectory()
        try makeTinyDataset(in: dir.appendingPathComponent("data"))
        let loaded = try load(tinyConfigYAML(root: dir.appendingPathComponent("data").path, iterations: 6), in: dir)
        let run = dir.appendingPathComponent("run").path
        let summary = try Trainer(loaded: loaded, runDirectory: run, interactive: false).run(resume: false)
        let names = try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").sorted()
        #expect(names == ["iter_000004", "iter_000006", "latest"], "\(names)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: run + "/checkpoints/latest") == "iter_000006")
        for file in ["adapter_model.safetensors", "adapter_config.json", "optimizer.safetensors", "state.json"] {
            #expect(FileManager.default.fileExists(atPath: run + "/checkpoints/latest/" + file), "\(file)")
        }
        #expect(FileManager.default.fileExists(atPath: run + "/config.yaml"))
        #expect(summary.adapterBytes > 0 && summary.adapterBytes < 4 * summary.totalParameters)
        // A second run into the same directory without --resume is refused.
        #expect(throws: TrainingError.self) { try Trainer(loaded: loaded, runDirectory: run, interactive: false).run(resume: false) }
    }

    @Test func nonFiniteLossStopsWithAClearMessage() throws {
        let dir = Fixtures.temporaryDirectory()
        try makeTinyDataset(in: dir.appendingPathComponent("data"))
        let loaded = try load(tinyConfigYAML(root: dir.appendingPathComponent("data").path, iterations: 6), in: dir)
        let trainer = try Trainer(loaded: loaded, runDirectory: dir.appendingPathComponent("nan").path, interactive: false)
        trainer.onSetup = { model in model.head.namedParameters()[0].1.data[0] = .nan }
        #expect { try trainer.run(resume: false) } throws: { error in
            "\(error)".contains("loss became nan") && "\(error)".contains("iteration 1")
        }
    }

    @Test func learningRateScheduleWarmsUpThenDecays() {
        var t = TrainSection()
        t.lr = 1; t.iterations = 100; t.warmupIters = 10; t.warmupRatio = 0.1; t.schedule = .poly; t.power = 1
        let s = LearningRateSchedule(train: t)
        #expect(abs(s.rate(at: 0) - 0.1) < 1e-12)             // warm-up starts at ratio·lr
        #expect(abs(s.rate(at: 5) - 0.95 * 0.55) < 1e-12)     // poly(5) = 0.95, warm-up factor 0.55
        #expect(abs(s.rate(at: 50) - 0.5) < 1e-12)
        #expect(s.rate(at: 100) == 0)
        t.schedule = .cosine; t.warmupIters = 0; t.minLr = 0.1
        let c = LearningRateSchedule(train: t)
        #expect(abs(c.rate(at: 50) - 0.55) < 1e-12 && abs(c.rate(at: 0) - 1) < 1e-12)
    }

    @Test func weightDecayGroupsFollowNames() {
        let params: [(String, Tensor)] = ["blocks.0.norm1.weight", "head.bias", "head.weight", "pos_embed", "expert.projA"].map { ($0, Tensor.zeros([1])) }
        let groups = ParameterGroups.make(params, weightDecay: 0.05, noDecay: ["norm", "bias", "pos_embed"])
        #expect(groups[0].parameters.map(\.0) == ["head.weight", "expert.projA"] && groups[0].weightDecay == 0.05)
        #expect(groups[1].parameters.map(\.0) == ["blocks.0.norm1.weight", "head.bias", "pos_embed"] && groups[1].weightDecay == 0)
    }

    /// MHR's routing logits get their own group: own decay, and lr routing_lr through the shared schedule.
    @Test func routingLogitsGetTheirOwnGroup() {
        let params: [(String, Tensor)] = ["blocks.0.attn.qkv.module_logits", "blocks.0.attn.qkv.lora_a", "head.bias"].map { ($0, Tensor.zeros([1])) }
        var train = TrainSection()
        train.lr = 1e-3
        train.weightDecay = 0.05
        let optimizer = ParameterGroups.optimizer(for: train, parameters: params,
                                                  routing: (names: ["blocks.0.attn.qkv.module_logits"], learningRate: 0.1, weightDecay: 0))
        let groups = optimizer.groups
        #expect(groups.count == 3)
        let routing = groups.first { $0.parameters.map(\.0) == ["blocks.0.attn.qkv.module_logits"] }
        #expect(routing?.weightDecay == 0 && abs((routing?.learningRateScale ?? 0) - 100) < 1e-3)
        #expect(groups.contains { $0.parameters.map(\.0) == ["blocks.0.attn.qkv.lora_a"] && $0.weightDecay == 0.05 && $0.learningRateScale == 1 })
    }

    @Test func gradientClippingScalesToTheMaximumNorm() {
        let p = Tensor([3, 4], requiresGrad: true)
        p.grad = Tensor([3, 4])
        let norm = ParameterGroups.clipGradients([("p", p)], maxNorm: 1)
        #expect(abs(norm - 5) < 1e-6 && abs(p.grad!.values[0] - 0.6) < 1e-5 && abs(p.grad!.values[1] - 0.8) < 1e-5)
    }

    @Test func sgdMatchesTorchByHand() {
        // torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=0.5): step 1 p=1,g=1 → d=1.5, buf=1.5, p=0.85;
        // step 2 g=1 → d=1.425, buf=0.9·1.5+1.425=2.775, p=0.85−0.2775=0.5725
        let p = Tensor([1], requiresGrad: true)
        let sgd = SGD(groups: [ParameterGroup(parameters: [("p", p)], weightDecay: 0.5)], momentum: 0.9)
        p.grad = Tensor([1]); sgd.step(learningRate: 0.1)
        #expect(abs(p.item - 0.85) < 1e-6)
        p.grad = Tensor([1]); sgd.step(learningRate: 0.1)
        #expect(abs(p.item - 0.5725) < 1e-6)
    }
}
