// The config files shipped in configs/ and the key reference in docs/config.md, checked against the code:
// every config loads through the same strict path as `adaroute train` (unknown keys are errors) and
// validates; the CamVid method family differs only where it means to; the documented keys are exactly
// the keys of the resolved config (what a run saves as config.yaml). Parsing only — no model is built.
import AdaModels
import AdaRun
import Foundation
import Testing

@Suite("Config files")
struct ConfigFilesTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let configFolder = repo.appendingPathComponent("configs")
    static let referenceDoc = repo.appendingPathComponent("docs/config.md")

    /// Every configs/*.yaml, by file name, sorted.
    static let configNames: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: configFolder.path)) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    static func load(_ name: String) throws -> LoadedConfig {
        try ConfigLoader.load(path: configFolder.appendingPathComponent(name).path)
    }

    // MARK: Every config file

    @Test func theConfigFolderIsFound() {
        #expect(Self.configNames.contains("quickstart.yaml"), "configs/ at \(Self.configFolder.path): \(Self.configNames)")
        #expect(Self.configNames.contains("ade20k_vit_base_adaroute.yaml"), "\(Self.configNames)")
    }

    @Test(arguments: ConfigFilesTests.configNames)
    func loadsDecodesAndValidates(name: String) throws {
        let loaded = try Self.load(name) // _base_ → strict decoding (unknown keys throw) → validate()
        #expect(try loaded.config.modelSpec().taskClasses == loaded.config.data.tasks.map(\.dataset.classes.count))
        // What a run saves as config.yaml decodes back to the same settings.
        #expect(try ConfigLoader.decode(yaml: loaded.resolvedYAML(), file: "resolved \(name)") == loaded.config)
    }

    @Test func anEmptyConfigIsTheDefaults() throws {
        #expect(try ConfigLoader.decode(yaml: "{}") == RunConfig())
    }

    /// camvid_vit_small_<method>.yaml compare the methods on equal terms: the same model, head, data,
    /// pipeline, train, eval and output settings as the adaroute one, except the method, the method's own
    /// settings, and a smaller lr for full fine-tuning.
    @Test func camvidMethodFamilyDiffersOnlyOnPurpose() throws {
        let prefix = "camvid_vit_small_"
        let methods = Set(AdapterMethodKind.allCases.map(\.rawValue))
        let names = Self.configNames.filter { $0.hasPrefix(prefix) && methods.contains(String($0.dropFirst(prefix.count).dropLast(".yaml".count))) }
        #expect(names.count >= 2, "\(names)")
        let reference = try Self.load(prefix + "adaroute.yaml").config
        for name in names {
            let config = try Self.load(name).config
            let method = String(name.dropFirst(prefix.count).dropLast(".yaml".count))
            #expect(config.adapter.method.rawValue == method, "\(name): adapter.method is \(config.adapter.method.rawValue)")
            #expect(config.model == reference.model, "\(name): model differs")
            #expect(config.head == reference.head, "\(name): head differs")
            #expect(config.data.dataset == reference.data.dataset, "\(name): data differs")
            #expect(config.data.pipeline == reference.data.pipeline, "\(name): data.pipeline differs")
            var train = config.train
            if config.adapter.method == .full {
                #expect(train.lr < reference.train.lr, "\(name): full fine-tuning should use a smaller lr")
                train.lr = reference.train.lr
            }
            #expect(train == reference.train, "\(name): train differs")
            #expect(config.eval == reference.eval, "\(name): eval differs")
            #expect(config.output == reference.output, "\(name): output differs")
        }
    }

    /// camvid_vit_small_adaroute_<neck>_upernet.yaml compare decoders on equal terms: everything as the
    /// linear-head adaroute config except the neck and head.
    @Test func camvidDecoderFamilyDiffersOnlyInNeckAndHead() throws {
        let reference = try Self.load("camvid_vit_small_adaroute.yaml").config
        let names = ["camvid_vit_small_adaroute_sta_upernet.yaml", "camvid_vit_small_adaroute_f2p_upernet.yaml"]
        var necks: [NeckKind] = []
        for name in names {
            let config = try Self.load(name).config
            #expect(config.head.kind == .upernet, "\(name)")
            necks.append(config.neck.kind)
            var same = config
            same.head = reference.head
            same.neck = reference.neck
            #expect(same == reference, "\(name) differs from camvid_vit_small_adaroute.yaml beyond neck and head")
        }
        #expect(necks == [.sta, .feature2pyramid])
    }

    @Test func ade20kRecipe() throws {
        let c = try Self.load("ade20k_vit_base_adaroute.yaml").config
        let data = c.data.dataset, pipeline = c.data.pipeline
        #expect(data.classes.count == 150 && data.palette?.count == 150)
        #expect(data.classes.first == "wall" && data.classes.last == "flag")
        #expect(data.reduceZeroLabel && data.trainSplit == "training" && data.valSplit == "validation" && data.maskDir == "annotations")
        #expect(c.model.backbone == "vit_base_patch16" && c.model.imageSize == [512, 512] && pipeline.crop == [512, 512])
        #expect(pipeline.scale == [2048, 512] && pipeline.ratioRange == [0.5, 2.0] && pipeline.catMaxRatio == 0.75)
        #expect(pipeline.testScale == [2048, 512] && c.eval.mode == .whole && !c.eval.flip)
        #expect(c.train.batchSize * c.train.accumulate == 16 && c.train.iterations == 160_000)
        #expect(c.train.optimizer == .adamw && c.train.lr == 6e-5 && c.train.weightDecay == 0.01)
        #expect(c.train.noDecay == ["norm", "pos_embed", "cls_token"])
        #expect(c.train.schedule == .poly && c.train.power == 1 && c.train.warmupIters == 1500 && c.train.warmupRatio == 1e-6)
        let a = c.adapter.adaroute
        #expect(c.adapter.method == .adaroute && a.rank == 128 && a.kernelSizes == [3, 5, 7] && a.routerHidden == 16)
    }

    // MARK: docs/config.md

    /// The backticked keys in the first column of the table rows of docs/config.md: under the heading
    /// named `section` (up to the next heading of the same or a higher level), or of the whole file.
    static func documentedKeys(section: String? = nil) throws -> [String] {
        let lines = try String(contentsOf: referenceDoc, encoding: .utf8).components(separatedBy: "\n")
        var inside = section == nil, level = 0, keys: [String] = []
        for line in lines {
            if line.hasPrefix("#") {
                let depth = line.prefix { $0 == "#" }.count
                let title = line.dropFirst(depth).trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "`", with: "")
                if let section {
                    if title == section { inside = true; level = depth; continue }
                    if inside && depth <= level { inside = false }
                }
                continue
            }
            guard inside, line.hasPrefix("|") else { continue }
            let cell = line.split(separator: "|", omittingEmptySubsequences: false).dropFirst().first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            guard cell.count > 2, cell.hasPrefix("`"), cell.hasSuffix("`") else { continue } // header, separator
            let key = String(cell.dropFirst().dropLast())
            let sections = ["model", "adapter", "head", "neck", "data", "train", "eval", "output", "init"]
            if sections.contains(where: { key.hasPrefix($0 + ".") }) { keys.append(key) }
        }
        return keys
    }

    /// Dotted paths of every leaf of a config tree, in order.
    static func leafPaths(_ value: ConfigValue, prefix: String = "") -> [String] {
        guard case .map(let map) = value else { return [prefix] }
        return map.entries.flatMap { key, child in leafPaths(child, prefix: prefix.isEmpty ? key : prefix + "." + key) }
    }

    /// The key paths of a resolved config (every key, defaults filled in), as a run saves it.
    static func resolvedKeys() throws -> [String] {
        let yaml = try load("quickstart.yaml").resolvedYAML()
        var locations: [String: String] = [:]
        return leafPaths(try ConfigParser.parse(yaml: yaml, file: "resolved", locations: &locations))
    }

    @Test func everyDocumentedTrainKeyExists() throws {
        let documented = try Self.documentedKeys(section: "train")
        #expect(documented.count >= 10, "no train table found in \(Self.referenceDoc.path): \(documented)")
        let resolved = try Self.resolvedKeys().filter { $0.hasPrefix("train.") }
        #expect(Set(documented).subtracting(resolved).isEmpty,
                "documented but not in the resolved config: \(Set(documented).subtracting(resolved).sorted())")
        #expect(Set(resolved).subtracting(documented).isEmpty,
                "train keys missing from docs/config.md: \(Set(resolved).subtracting(documented).sorted())")
    }

    /// Every section: the reference documents exactly the resolved config's keys, once each, in its order.
    @Test func theReferenceDocumentsEveryKeyInOrder() throws {
        let documented = try Self.documentedKeys(), resolved = try Self.resolvedKeys()
        let unknown = Set(documented).subtracting(resolved), missing = Set(resolved).subtracting(documented)
        #expect(unknown.isEmpty, "documented but not in the resolved config: \(unknown.sorted())")
        #expect(missing.isEmpty, "keys missing from docs/config.md: \(missing.sorted())")
        #expect(documented.count == Set(documented).count, "keys documented twice")
        if unknown.isEmpty && missing.isEmpty { #expect(documented == resolved, "the tables are not in the resolved config's order") }
    }

    /// The EPFL adaptation family: the two MHR transfer configs and the LoRA baseline share data, schedule,
    /// seed and backbone with each other, and the backbone (image size, seed, weights) with the multi-dataset
    /// run they start from — the transfer refuses another backbone.
    @Test func epflTransferFamilySharesDataScheduleAndBackbone() throws {
        let baseline = try Self.load("epfl_mito_vit_small_lora.yaml").config
        let multi = try Self.load("multi_camvid_isbi_vit_small_mhr.yaml").config
        for (name, mode) in [("epfl_mito_from_multi_mhr_z.yaml", InitMode.mhrZ), ("epfl_mito_from_multi_mhr_mu.yaml", .mhrMu)] {
            let c = try Self.load(name).config
            #expect(c.initialization.mode == mode && c.initialization.from == "runs/multi_camvid_isbi_vit_small_mhr")
            #expect(c.data == baseline.data && c.train == baseline.train && c.model == baseline.model && c.head == baseline.head)
            #expect(c.adapter.mhr == multi.adapter.mhr, "\(name): the inventory shapes must match the source run's")
        }
        #expect(baseline.model == multi.model && baseline.train.seed == multi.train.seed)
        #expect(multi.data.tasks.map(\.name) == ["camvid", "isbi"])
    }
}
