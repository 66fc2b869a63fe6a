import AdaData
import AdaModels
import AdaRun
import AdaTestSupport
import Foundation
import Testing

@Suite("Configuration")
struct ConfigTests {
    func write(_ text: String, _ name: String, in dir: URL) throws -> String {
        let path = dir.appendingPathComponent(name).path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func errorText(_ body: () throws -> Void) -> String {
        do { try body(); return "no error" } catch { return "\(error)" }
    }

    static let minimal = """
        model:
          backbone: vit_tiny_patch16
          image_size: [64, 64]
        data:
          root: /data/camvid
          classes: [sky, road]
          pipeline:
            crop: [64, 64]
        """

    @Test func emptySectionsDecodeToTheDefaults() throws {
        #expect(try ConfigLoader.decode(yaml: "{}") == RunConfig())
        let c = try ConfigLoader.decode(yaml: Self.minimal)
        #expect(c.model.backbone == "vit_tiny_patch16" && c.train.lr == 1e-3 && c.adapter.method == .adaroute)
        #expect(c.data.dataset.classes == ["sky", "road"] && c.data.pipeline.crop == [64, 64])
    }

    @Test func snakeCaseKeysReachCamelCaseProperties() throws {
        let c = try ConfigLoader.decode(yaml: """
            adapter:
              method: lora
              lora: {rank: 4, targets: [qkv, fc2]}
              adaroute: {router_hidden: 24, kernel_sizes: []}
            train: {batch_size: 3, warmup_iters: 7, grad_clip: 1.5, no_decay: [norm]}
            data: {reduce_zero_label: true, pipeline: {cat_max_ratio: 0.5}}
            """)
        #expect(c.adapter.method == .lora && c.adapter.lora.rank == 4 && c.adapter.lora.targets == [.qkv, .fc2])
        #expect(c.adapter.adaroute.routerHidden == 24 && c.adapter.adaroute.kernelSizes.isEmpty)
        #expect(c.train.batchSize == 3 && c.train.warmupIters == 7 && c.train.gradClip == 1.5 && c.train.noDecay == ["norm"])
        #expect(c.data.dataset.reduceZeroLabel && c.data.pipeline.catMaxRatio == 0.5)
    }

    @Test func unknownKeysAreErrorsWithSuggestionsAndLocations() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = try write(Self.minimal + "\ntrain:\n  lrr: 0.1\n  batch_size: 2\n", "typo.yaml", in: dir)
        let text = errorText { _ = try ConfigLoader.load(path: path) }
        #expect(text.contains("\(path):10") && text.contains("unknown key 'train.lrr'") && text.contains("did you mean 'lr'"), "\(text)")
        let section = errorText { _ = try ConfigLoader.decode(yaml: "trian: {lr: 1}", file: "x.yaml") }
        #expect(section.contains("unknown key 'trian'") && section.contains("did you mean 'train'"), "\(section)")
        let nested = errorText { _ = try ConfigLoader.decode(yaml: "adapter: {adaroute: {rnak: 8}}", file: "x.yaml") }
        #expect(nested.contains("adapter.adaroute.rnak") && nested.contains("'rank'"), "\(nested)")
    }

    @Test func wrongTypesNameTheKeyPathAndExpectation() {
        let cases: [(String, [String])] = [
            ("train: {lr: fast}", ["train.lr", "expected a number", "'fast'"]),
            ("train: {iterations: 2.5}", ["train.iterations", "expected an integer"]),
            ("adapter: {method: lroa}", ["adapter.method", "did you mean 'lora'"]),
            ("model: {image_size: 512}", ["model.image_size", "expected a list"]),
            ("train: {grad_clip: [1]}", ["train.grad_clip", "expected a number"]),
            ("head: {kind: fcn}", ["head.kind", "linear", "setr_naive"]),
        ]
        for (yaml, fragments) in cases {
            let text = errorText { _ = try ConfigLoader.decode(yaml: yaml, file: "bad.yaml") }
            for fragment in fragments { #expect(text.contains(fragment), "\(yaml) → \(text)") }
            #expect(text.contains("bad.yaml"), "\(text)")
        }
    }

    @Test func baseInheritanceAndOverrides() throws {
        let dir = Fixtures.temporaryDirectory()
        _ = try write(Self.minimal + "\ntrain: {lr: 0.01, iterations: 50}\n", "base.yaml", in: dir)
        let child = try write("_base_: base.yaml\ntrain: {iterations: 80}\nadapter: {method: linear}\n", "child.yaml", in: dir)
        let loaded = try ConfigLoader.load(path: child, overrides: ["train.lr=3e-4", "data.pipeline.flip=0", "eval.mode=slide"])
        #expect(loaded.config.train.iterations == 80)             // child wins
        #expect(loaded.config.train.lr == 3e-4)                   // --set wins
        #expect(loaded.config.adapter.method == .linear && loaded.config.model.backbone == "vit_tiny_patch16") // from base
        #expect(loaded.config.data.pipeline.flip == 0 && loaded.config.eval.mode == .slide)
        let typo = errorText { _ = try ConfigLoader.load(path: child, overrides: ["train.iteration=1"]) }
        #expect(typo.contains("--set train.iteration") && typo.contains("did you mean 'iterations'"), "\(typo)")
        #expect(errorText { _ = try ConfigLoader.load(path: child, overrides: ["novalue"]) }.contains("KEY.PATH=VALUE"))
        let loop = try write("_base_: loop.yaml\n", "loop.yaml", in: dir)
        #expect(errorText { _ = try ConfigLoader.load(path: loop) }.contains("cycle"))
        #expect(errorText { _ = try ConfigLoader.load(path: dir.appendingPathComponent("none.yaml").path) }.contains("no such file"))
    }

    @Test func resolvedConfigReloadsToTheSameSettings() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = try write(Self.minimal + "\nadapter: {method: adaptformer}\ntrain: {grad_clip: 2.0, lr: 0.0003}\n", "run.yaml", in: dir)
        let loaded = try ConfigLoader.load(path: path)
        let yaml = try loaded.resolvedYAML()
        #expect(yaml.contains("router_hidden: 16") && yaml.contains("grad_clip: 2.0") && yaml.contains("pretrained: null"), "\(yaml)")
        let again = try write(yaml, "resolved.yaml", in: dir)
        #expect(try ConfigLoader.load(path: again).config == loaded.config)
    }

    @Test func validationCatchesInconsistentSettings() throws {
        let dir = Fixtures.temporaryDirectory()
        let crop = try write(Self.minimal.replacingOccurrences(of: "crop: [64, 64]", with: "crop: [96, 96]"), "crop.yaml", in: dir)
        #expect(errorText { _ = try ConfigLoader.load(path: crop) }.contains("model.image_size"))
        let noClasses = try write("data: {root: /x}\n", "nc.yaml", in: dir)
        #expect(errorText { _ = try ConfigLoader.load(path: noClasses) }.contains("classes"))
        let preset = try write(Self.minimal.replacingOccurrences(of: "vit_tiny_patch16", with: "vit_gigantic"), "p.yaml", in: dir)
        #expect(errorText { _ = try ConfigLoader.load(path: preset) }.contains("unknown preset 'vit_gigantic'"))
    }

    @Test func neckAndHeadSettingsAreValidatedTogether() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func load(_ extra: String) -> String {
            errorText { _ = try ConfigLoader.load(path: try write(Self.minimal + "\n" + extra, "n.yaml", in: dir)) }
        }
        #expect(load("neck: {kind: sta}").contains("upernet"))
        #expect(load("head: {kind: upernet}").contains("neck.kind"))
        #expect(load("head: {kind: upernet}\nneck: {kind: sta, taps: [1, 2, 40]}").contains("block 40 does not exist"))
        #expect(load("head: {kind: upernet}\nneck: {kind: feature2pyramid}\ntrain: {batch_size: 1}").contains("train.batch_size"))
        #expect(load("neck: {kind: stta}").contains("did you mean 'sta'"))
        #expect(load("head: {kind: upernet, aux_weight: 0.4}\nneck: {kind: sta, detail_channels: 8}") == "no error")
        let c = try ConfigLoader.load(path: try write(Self.minimal + "\nhead: {kind: upernet, channels: 32}\nneck: {kind: feature2pyramid}", "ok.yaml", in: dir))
        #expect(c.config.neck.resolvedTaps(depth: 12) == [3, 5, 7, 11] && c.config.head.channels == 32)
    }

    @Test func mhrAndPacaSettingsAreValidated() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func load(_ extra: String) -> String {
            errorText { _ = try ConfigLoader.load(path: try write(Self.minimal + "\n" + extra, "m.yaml", in: dir)) }
        }
        // ViT-Ti: width 192, MLP 768; 5 heads divide neither.
        #expect(load("adapter: {method: mhr, mhr: {heads: 5}}").contains("adapter.mhr.heads"))
        #expect(load("adapter: {method: mhr, mhr: {skills: 0}}").contains("adapter.mhr.skills"))
        #expect(load("adapter: {method: mhr, mhr: {granularity: coarse}}").contains("adapter.mhr.granularity: 'coarse' is not one of finegrained, coarsegrained"))
        #expect(load("adapter: {method: mhr, mhr: {skills: 4, heads: 4, rank: 2, targets: [qkv, fc2]}}") == "no error")
        #expect(load("adapter: {method: paca, paca: {rank: 500, targets: [qkv]}}").contains("adapter.paca.rank"))
        #expect(load("adapter: {method: paca, paca: {rank: 500, targets: [fc2]}}") == "no error") // fc2 has 768 inputs
        #expect(load("adapter: {method: paca, paca: {rnak: 4}}").contains("did you mean 'rank'"))
    }

    static let twoDatasets = """
        model:
          backbone: vit_tiny_patch16
          image_size: [64, 64]
        adapter: {method: mhr}
        data:
          pipeline: {crop: [64, 64]}
          datasets:
            - {name: street, root: /data/camvid, classes: [sky, road], weight: 3}
            - name: em
              root: /data/isbi
              classes: [membrane, cell]
              palette: [[255, 255, 0], [64, 64, 64]]
              pipeline: {crop: [64, 64], scale: [512, 512], cat_max_ratio: 1.0}
        """

    @Test func severalDatasetsDecodeIntoTasksWithTheirOwnPipelines() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let loaded = try ConfigLoader.load(path: try write(Self.twoDatasets, "multi.yaml", in: dir))
        let tasks = loaded.config.data.tasks
        #expect(tasks.map(\.name) == ["street", "em"] && tasks.map(\.weight) == [3, 1])
        #expect(tasks[0].pipeline == loaded.config.data.pipeline && tasks[1].pipeline.scale == [512, 512])
        let spec = try loaded.config.modelSpec()
        #expect(spec.tasks == [.init(name: "street", classes: 2), .init(name: "em", classes: 2)] && spec.taskClasses == [2, 2])
        // The resolved YAML lists the datasets and reloads to the same settings.
        let yaml = try loaded.resolvedYAML()
        #expect(yaml.contains("datasets:") && !yaml.contains("\n  root:"), "\(yaml)")
        #expect(try ConfigLoader.load(path: try write(yaml, "resolved.yaml", in: dir)).config == loaded.config)
        // A single dataset is one task named after its folder.
        #expect(try ConfigLoader.load(path: try write(Self.minimal, "one.yaml", in: dir)).config.data.tasks.map(\.name) == ["camvid"])
    }

    @Test func severalDatasetsAndInitAreValidated() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        func load(_ text: String) -> String { errorText { _ = try ConfigLoader.load(path: try write(text, "v.yaml", in: dir)) } }
        let multi = Self.twoDatasets
        #expect(load(multi.replacingOccurrences(of: "name: em", with: "name: street")).contains("data.datasets[1].name: 'street' names two datasets"))
        #expect(load(multi.replacingOccurrences(of: "weight: 3", with: "weight: 0")).contains("data.datasets[0].weight"))
        #expect(load(multi.replacingOccurrences(of: "pipeline: {crop: [64, 64], scale", with: "pipeline: {crop: [32, 32], scale")).contains("data.datasets[1].pipeline.crop"))
        #expect(load(multi.replacingOccurrences(of: "classes: [membrane, cell]", with: "classes: []")).contains("data.datasets[1]"))
        #expect(load(multi.replacingOccurrences(of: "data:\n", with: "data:\n  root: /data/x\n")).contains("inside each entry"))
        #expect(load(multi + "\nhead: {kind: upernet}\nneck: {kind: sta}").contains("neck.kind"))
        #expect(load(multi.replacingOccurrences(of: "{name: street,", with: "{nmae: street,")).contains("did you mean 'name'"))
        #expect(load(multi) == "no error")
        #expect(load(Self.minimal + "\ninit: {mode: mhr_z, from: /runs/x}").contains("init.mode"))
        #expect(load(Self.minimal + "\nadapter: {method: mhr}\ninit: {mode: mhr_mu}").contains("--init-from"))
        #expect(load(Self.minimal + "\nadapter: {method: mhr}\ninit: {mode: mhr_z, from: /runs/x}") == "no error")
        #expect(load(Self.minimal + "\ninit: {mode: mhr_zz}").contains("did you mean 'mhr_z'"))
        // MHR-μ builds a LoRA of the MHR rank, alpha and targets.
        let mu = try ConfigLoader.load(path: try write(Self.minimal + "\nadapter: {method: mhr, mhr: {rank: 3, alpha: 2, targets: [qkv, fc1]}}\ninit: {mode: mhr_mu, from: /r}", "mu.yaml", in: dir))
        let lora = try mu.config.modelSpec().adapter
        #expect(lora.method == .lora && lora.lora == LoRAConfig(rank: 3, alpha: 2, targets: [.qkv, .fc1]))
    }
}
