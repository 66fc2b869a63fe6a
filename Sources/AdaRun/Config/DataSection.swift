// `data:` — one dataset (its folder keys at this level, DatasetConfig, plus `pipeline:`), or several under
// `datasets:` for a multi-task run: each entry has its own folder keys, classes, palette and pipeline
// (default: the section's `pipeline`), a `name` and a sampling `weight`. A sample's task id is its
// dataset's index in that list; the model gets one head per dataset.
import AdaData

public struct DataSection: Codable, Equatable, Sendable {
    public var dataset = DatasetConfig(root: "", classes: [])
    public var pipeline = PipelineConfig()
    /// Several datasets trained together (empty: the single dataset above).
    public var datasets: [DatasetEntry] = []

    public init() {}

    enum CodingKeys: String, CodingKey { case pipeline, datasets }

    public init(from decoder: Decoder) throws {
        dataset = try DatasetConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pipeline = try c.decodeIfPresent(PipelineConfig.self, forKey: .pipeline) ?? PipelineConfig()
        datasets = try c.decodeIfPresent([DatasetEntry].self, forKey: .datasets) ?? []
    }

    public func encode(to encoder: Encoder) throws {
        if datasets.isEmpty { try dataset.encode(to: encoder) } // else the folder keys live in each entry
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pipeline, forKey: .pipeline)
        try c.encode(datasets, forKey: .datasets)
    }

    /// The datasets of the run in task order (a single-dataset config is one task named after its folder).
    public var tasks: [TaskData] {
        guard datasets.isEmpty else {
            return datasets.map { TaskData(name: $0.name, dataset: $0.dataset, pipeline: $0.pipeline ?? pipeline, weight: $0.weight) }
        }
        let folder = dataset.root.split(separator: "/").last.map(String.init) ?? ""
        return [TaskData(name: folder.isEmpty ? "data" : folder, dataset: dataset, pipeline: pipeline, weight: 1)]
    }

    func validate(imageSize: [Int]) throws {
        func bad(_ path: String, _ reason: String) -> ConfigError { .invalid(location: "data", path: path, reason: reason) }
        if !datasets.isEmpty && dataset != DatasetConfig(root: "", classes: []) {
            throw bad("data", "with data.datasets, set root, classes and the other folder keys inside each entry, not at data level")
        }
        var names = Set<String>()
        for (i, task) in tasks.enumerated() {
            let path = datasets.isEmpty ? "data" : "data.datasets[\(i)]"
            do { try task.dataset.validate() } catch { throw bad(path, "\(error)") }
            if let problem = task.pipeline.validationProblem() { throw bad(path + ".pipeline", problem) }
            if task.pipeline.crop != imageSize {
                throw bad(path + ".pipeline.crop", "the training crop \(task.pipeline.crop) must equal model.image_size \(imageSize) (the position-embedding grid)")
            }
            guard !datasets.isEmpty else { continue }
            if task.name.isEmpty || task.name.contains(where: { $0 == "/" || $0 == " " }) {
                throw bad(path + ".name", "expected a short name without spaces or slashes (it names the head and the reports), got '\(task.name)'")
            }
            if !names.insert(task.name).inserted { throw bad(path + ".name", "'\(task.name)' names two datasets") }
            if !(task.weight > 0) || !task.weight.isFinite { throw bad(path + ".weight", "must be > 0, got \(task.weight)") }
        }
    }
}

/// One entry of `data.datasets`.
public struct DatasetEntry: Codable, Equatable, Sendable {
    /// Names the task's head and its reports (e.g. `camvid`).
    public var name = ""
    /// Share of training samples drawn from this dataset: weight / Σ weights.
    public var weight: Double = 1
    public var dataset = DatasetConfig(root: "", classes: [])
    /// nil = the `data.pipeline` of the section.
    public var pipeline: PipelineConfig? = nil

    public init(name: String, dataset: DatasetConfig, weight: Double = 1, pipeline: PipelineConfig? = nil) {
        self.name = name
        self.dataset = dataset
        self.weight = weight
        self.pipeline = pipeline
    }

    enum CodingKeys: String, CodingKey { case name, weight, pipeline }

    public init(from decoder: Decoder) throws {
        dataset = try DatasetConfig(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decodeIfPresent(String.self, forKey: .name) ?? ""
        weight = try c.decodeIfPresent(Double.self, forKey: .weight) ?? 1
        pipeline = try c.decodeIfPresent(PipelineConfig.self, forKey: .pipeline)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(name, forKey: .name)
        try c.encode(weight, forKey: .weight)
        try dataset.encode(to: encoder)
        try c.encodeIfPresent(pipeline, forKey: .pipeline)
    }
}

/// A dataset of the run with everything training and evaluation need.
public struct TaskData: Equatable, Sendable {
    public var name: String
    public var dataset: DatasetConfig
    public var pipeline: PipelineConfig
    public var weight: Double
}
