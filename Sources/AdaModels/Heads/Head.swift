// Segmentation heads turn backbone features into class logits on some grid; the model upsamples them
// bilinearly (align_corners=False) to the label size.
import AdaNN
import Foundation
import AdaTensor

/// What the backbone hands a head.
public struct HeadInput {
    /// Patch tokens after the ViT's final LayerNorm, [B, N, D].
    public let tokens: Tensor
    public let gridHeight: Int
    public let gridWidth: Int
    /// Outputs of tapped blocks (after their adapters, through the final LayerNorm when the neck asks
    /// for it), [B, N, D] each, for necks.
    public let taps: [Tensor]
    /// The normalised input images [B, 3, H, W] (necks with an image branch, such as STA's detail CNN).
    public let images: Tensor?
    /// A neck's feature pyramid, channels-last [B, h_l, w_l, C_l], finest level first.
    public let levels: [Tensor]

    public init(tokens: Tensor, gridHeight: Int, gridWidth: Int, taps: [Tensor] = [], images: Tensor? = nil,
                levels: [Tensor] = []) {
        self.tokens = tokens
        self.gridHeight = gridHeight
        self.gridWidth = gridWidth
        self.taps = taps
        self.images = images
        self.levels = levels
    }

    /// Tokens [B, N, D] of tap i as a channels-last map [B, h, w, D] (a view: token n is pixel (n / w, n % w)).
    public func tapMap(_ i: Int) -> Tensor {
        let t = taps[i]
        return t.reshaped([t.shape[0], gridHeight, gridWidth, t.shape[2]])
    }
}

/// Turns tapped block outputs (and possibly the image) into a multi-scale pyramid for a decoder head.
public protocol FeatureNeck: Module {
    /// Block indices whose outputs the neck reads, in the order it reads them.
    var tapBlocks: [Int] { get }
    /// Whether taps pass through the backbone's final LayerNorm first.
    var tapNorm: Bool { get }
    /// Channels of each level, finest first.
    var levelChannels: [Int] { get }
    /// Resolution of each level relative to the token grid (4 = stride p/4), finest first.
    var levelScales: [Double] { get }
    /// The pyramid, channels-last [B, h_l, w_l, C_l], finest first.
    func callAsFunction(_ input: HeadInput, context: ForwardContext) -> [Tensor]
}

extension FeatureNeck {
    /// The level closest to the token grid's resolution (stride p): where an auxiliary head reads.
    public var gridLevel: Int {
        levelScales.indices.min { abs(log2(levelScales[$0])) < abs(log2(levelScales[$1])) } ?? 0
    }
}

public protocol SegmentationHead: Module {
    var classes: Int { get }
    /// Block indices whose outputs the head needs as `taps` (empty for single-map heads).
    var tapBlocks: [Int] { get }
    /// Logits [B, K, h', w'] at the head's own stride.
    func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor
}

/// Segmenter's "linear" head: Linear(D, K) on every patch token, logits on the patch grid.
/// Names: head.weight [K, D], head.bias [K]; init trunc_normal(std 0.02), bias 0.
public final class LinearHead: Module, SegmentationHead {
    public let weight: Tensor
    public let bias: Tensor
    public var classes: Int { weight.shape[0] }
    public var tapBlocks: [Int] { [] }

    public init(dim: Int, classes: Int, generator: inout RandomGenerator) {
        weight = Tensor.truncatedNormal([classes, dim], std: 0.02, using: &generator, requiresGrad: true)
        bias = Tensor.zeros([classes], requiresGrad: true)
    }

    public override var localParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }

    public func callAsFunction(_ input: HeadInput, context: ForwardContext) -> Tensor {
        let b = input.tokens.shape[0]
        return input.tokens.linear(weight, bias: bias)                   // [B, N, K]
            .transposed(1, 2)                                            // [B, K, N]
            .reshaped([b, classes, input.gridHeight, input.gridWidth])   // token n ↦ (n / w, n % w)
    }
}

extension HeadInput {
    /// The same input for a subset of the batch (rows in the given order), differentiably: each run of
    /// consecutive rows is one slice, and the runs are concatenated.
    public func selecting(rows: [Int]) -> HeadInput {
        precondition(!rows.isEmpty, "HeadInput.selecting: no rows")
        func select(_ t: Tensor) -> Tensor {
            if rows == Array(0..<t.shape[0]) { return t }
            var runs: [Range<Int>] = []
            for row in rows {
                if let last = runs.last, last.upperBound == row { runs[runs.count - 1] = last.lowerBound..<(row + 1) }
                else { runs.append(row..<(row + 1)) }
            }
            let parts = runs.map { t.slice(axis: 0, range: $0) }
            return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
        }
        return HeadInput(tokens: select(tokens), gridHeight: gridHeight, gridWidth: gridWidth, taps: taps.map(select),
                         images: images.map(select), levels: levels.map(select))
    }
}
