// What flows through the data pipeline: one image (float, channels-last, 0–255 until normalised) with
// its label mask, transformed in place by each step, then stacked into a batch tensor.
//
// Legend: H×W pixels, C = 3 channels.
import AdaTensor

/// A float image, H × W × C interleaved (RGB), values 0–255 before normalisation.
public struct ImageBuffer: Equatable, Sendable {
    public var width: Int
    public var height: Int
    public var channels: Int
    public var pixels: [Float]

    public init(width: Int, height: Int, channels: Int = 3, pixels: [Float]) {
        precondition(pixels.count == width * height * channels, "ImageBuffer: \(pixels.count) values for \(width)×\(height)×\(channels)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    public init(width: Int, height: Int, channels: Int = 3, fill: Float = 0) {
        self.init(width: width, height: height, channels: channels,
                  pixels: [Float](repeating: fill, count: width * height * channels))
    }

    public init(_ rgb: RGBImage) {
        self.init(width: rgb.width, height: rgb.height, channels: 3, pixels: rgb.pixels.map { Float($0) })
    }
}

/// One training or evaluation example.
public struct Sample: Sendable {
    public var image: ImageBuffer
    /// Class index per pixel (255 = ignore); nil for unlabelled images (predict).
    public var mask: LabelMask?
    /// File stem, for reports and output names.
    public var name: String
    /// Size of the image as read from disk (metrics and predictions use the original resolution).
    public var originalWidth: Int
    public var originalHeight: Int
    /// Index of the dataset (task) the sample comes from in a multi-dataset run; 0 otherwise.
    public var task: Int

    public init(image: ImageBuffer, mask: LabelMask?, name: String, task: Int = 0) {
        self.image = image
        self.mask = mask
        self.name = name
        self.task = task
        originalWidth = image.width
        originalHeight = image.height
    }
}

/// A source of samples by index (a dataset split).
public protocol SampleSource: Sendable {
    var count: Int { get }
    /// Decodes sample `index` (0..<count); errors name the file.
    func sample(at index: Int) throws -> Sample
}

/// One step of the pipeline; randomness only from `generator` so a sample's augmentation is a pure
/// function of its seed.
public protocol Transform: Sendable {
    func apply(_ sample: inout Sample, generator: inout RandomGenerator) throws
}

/// A batch ready for the model.
public struct Batch {
    /// [B, 3, H, W], normalised.
    public var images: Tensor
    /// B·H·W labels (255 = ignore), row-major per image.
    public var labels: [Int32]
    public var names: [String]
    /// The task (dataset index) of every sample.
    public var tasks: [Int]

    public init(images: Tensor, labels: [Int32], names: [String], tasks: [Int]? = nil) {
        precondition(labels.count == images.shape[0] * images.shape[2] * images.shape[3],
                     "Batch: \(labels.count) labels for images \(images.shape)")
        precondition(tasks == nil || tasks!.count == images.shape[0], "Batch: \(tasks!.count) task ids for \(images.shape[0]) images")
        self.images = images
        self.labels = labels
        self.names = names
        self.tasks = tasks ?? Array(repeating: 0, count: images.shape[0])
    }
}
