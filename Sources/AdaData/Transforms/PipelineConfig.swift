// The augmentation recipe as a config section (JSON or YAML through Codable) and the transform lists it
// builds. Defaults are mmseg's ADE20K 512×512 recipe (seg-heads-and-metrics.md §3–§4).
//
// Legend: crop = [height, width]; scale = [long, short] bound of the keep-ratio resize.

/// Every key is optional; a missing key takes the default below. `ratioRange: null` turns the random
/// rescale off (ratio 1); `testScale` missing or null means "same as scale".
public struct PipelineConfig: Codable, Equatable, Sendable {
    /// Training crop [height, width]; the padded training image has this size.
    public var crop: [Int] = [512, 512]
    /// Keep-ratio resize bound [long, short] (order does not matter: mmcv takes max and min).
    public var scale: [Int] = [2048, 512]
    /// Random rescale ratio [low, high] applied to `scale`; nil = no random rescale.
    public var ratioRange: [Double]? = [0.5, 2.0]
    /// RandomCrop re-draws while one class covers ≥ this share of the labelled pixels (1 = no check).
    public var catMaxRatio: Double = 0.75
    /// Horizontal flip probability.
    public var flip: Double = 0.5
    /// Whether PhotoMetricDistortion runs.
    public var photometric: Bool = true
    /// Normalisation, RGB, 0–255 units.
    public var mean: [Double] = [123.675, 116.28, 103.53]
    public var std: [Double] = [58.395, 57.12, 57.375]
    /// Test-time keep-ratio resize bound [long, short]; nil = `scale`.
    public var testScale: [Int]? = nil

    public init() {}

    public init(crop: [Int] = [512, 512], scale: [Int] = [2048, 512], ratioRange: [Double]? = [0.5, 2.0],
                catMaxRatio: Double = 0.75, flip: Double = 0.5, photometric: Bool = true,
                mean: [Double] = [123.675, 116.28, 103.53], std: [Double] = [58.395, 57.12, 57.375],
                testScale: [Int]? = nil) throws {
        self.crop = crop
        self.scale = scale
        self.ratioRange = ratioRange
        self.catMaxRatio = catMaxRatio
        self.flip = flip
        self.photometric = photometric
        self.mean = mean
        self.std = std
        self.testScale = testScale
        if let problem = validationProblem() { throw PipelineConfigError(message: problem) }
    }

    enum CodingKeys: String, CodingKey {
        case crop, scale, ratioRange, catMaxRatio, flip, photometric, mean, std, testScale
    }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let defaults = PipelineConfig()
        crop = try container.decodeIfPresent([Int].self, forKey: .crop) ?? defaults.crop
        scale = try container.decodeIfPresent([Int].self, forKey: .scale) ?? defaults.scale
        // Absent → default range; explicit null → no random rescale.
        if container.contains(.ratioRange) {
            ratioRange = try container.decodeIfPresent([Double].self, forKey: .ratioRange)
        } else {
            ratioRange = defaults.ratioRange
        }
        catMaxRatio = try container.decodeIfPresent(Double.self, forKey: .catMaxRatio) ?? defaults.catMaxRatio
        flip = try container.decodeIfPresent(Double.self, forKey: .flip) ?? defaults.flip
        photometric = try container.decodeIfPresent(Bool.self, forKey: .photometric) ?? defaults.photometric
        mean = try container.decodeIfPresent([Double].self, forKey: .mean) ?? defaults.mean
        std = try container.decodeIfPresent([Double].self, forKey: .std) ?? defaults.std
        testScale = try container.decodeIfPresent([Int].self, forKey: .testScale)
        if let problem = validationProblem() {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "pipeline: \(problem)"))
        }
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(crop, forKey: .crop)
        try container.encode(scale, forKey: .scale)
        try container.encode(ratioRange, forKey: .ratioRange) // null is meaningful here (no random rescale)
        try container.encode(catMaxRatio, forKey: .catMaxRatio)
        try container.encode(flip, forKey: .flip)
        try container.encode(photometric, forKey: .photometric)
        try container.encode(mean, forKey: .mean)
        try container.encode(std, forKey: .std)
        try container.encodeIfPresent(testScale, forKey: .testScale)
    }

    /// A sentence naming the first invalid key, or nil.
    public func validationProblem() -> String? {
        func positivePair(_ values: [Int]) -> Bool { values.count == 2 && values.allSatisfy { $0 > 0 } }
        if !positivePair(crop) { return "crop must be [height, width] with positive values, got \(crop)" }
        if !positivePair(scale) { return "scale must be [long, short] with positive values, got \(scale)" }
        if let testScale, !positivePair(testScale) {
            return "testScale must be [long, short] with positive values, got \(testScale)"
        }
        if let range = ratioRange, range.count != 2 || !(range[0] > 0) || !(range[0] <= range[1]) {
            return "ratioRange must be [low, high] with 0 < low ≤ high, got \(range)"
        }
        if !(catMaxRatio > 0 && catMaxRatio <= 1) { return "catMaxRatio must be in (0, 1], got \(catMaxRatio)" }
        if !(flip >= 0 && flip <= 1) { return "flip probability must be in [0, 1], got \(flip)" }
        if mean.count != 3 || std.count != 3 { return "mean and std need 3 values (RGB), got \(mean) and \(std)" }
        if !std.allSatisfy({ $0 > 0 }) { return "std must be positive, got \(std)" }
        return nil
    }

    /// RandomResize → RandomCrop → RandomFlip → PhotoMetricDistortion (if enabled) → Normalize → Pad.
    public func trainTransforms() -> [Transform] {
        precondition(validationProblem() == nil, "PipelineConfig: \(validationProblem()!)")
        var transforms: [Transform] = [
            RandomResize(scale: (scale[0], scale[1]), ratioRange: ratioRange.map { $0[0]...$0[1] }, keepRatio: true),
            RandomCrop(height: crop[0], width: crop[1], catMaxRatio: catMaxRatio, ignoreIndex: 255),
            RandomFlip(probability: flip),
        ]
        if photometric { transforms.append(PhotoMetricDistortion()) }
        transforms.append(normalize)
        transforms.append(Pad(height: crop[0], width: crop[1], imageValue: 0, maskValue: 255))
        return transforms
    }

    /// Resize (keep ratio, no randomness) → Normalize. The mask stays at its original resolution, as in
    /// mmseg's test pipeline: predictions are scored against the original annotation.
    public func testTransforms() -> [Transform] {
        precondition(validationProblem() == nil, "PipelineConfig: \(validationProblem()!)")
        let bound = testScale ?? scale
        return [Resize(scale: (bound[0], bound[1]), keepRatio: true, resizeMask: false), normalize]
    }

    var normalize: Normalize { Normalize(mean: mean.map { Float($0) }, std: std.map { Float($0) }) }
}

public struct PipelineConfigError: Error, CustomStringConvertible, Equatable {
    public var message: String
    public var description: String { "pipeline: \(message)" }
}
