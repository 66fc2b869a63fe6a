// BatchNorm layer on channels-last data (PyTorch nn.BatchNorm1d/2d on the channel axis; also the
// stand-in for mmseg's SyncBN on one machine). Names as PyTorch: `weight`, `bias` (parameters, init
// 1 and 0), buffers `running_mean` (0), `running_var` (1), `num_batches_tracked`.
//
// Legend: x, y [..., C] (e.g. [B, H, W, C] feature maps or [N, C]); every tensor here is [C] except
// num_batches_tracked [1].
import AdaTensor

public final class BatchNorm: Module {
    public let weight: Tensor?
    public let bias: Tensor?
    public let runningMean: Tensor
    public let runningVar: Tensor
    /// Training forwards seen so far. PyTorch keeps an int64 scalar; here a [1] float buffer (exact
    /// up to 2²⁴ steps), so every buffer goes through the same float tensor path.
    public let numBatchesTracked: Tensor
    public let eps: Float
    /// Weight of the newest batch in the running statistics; nil = cumulative average
    /// (1 / num_batches_tracked), as PyTorch's momentum=None.
    public let momentum: Float?

    public var features: Int { runningMean.count }

    public init(_ features: Int, eps: Float = 1e-5, momentum: Float? = 0.1, affine: Bool = true) {
        precondition(features > 0, "BatchNorm: feature count must be positive, got \(features)")
        weight = affine ? Tensor.ones([features], requiresGrad: true) : nil
        bias = affine ? Tensor.zeros([features], requiresGrad: true) : nil
        runningMean = Tensor.zeros([features])
        runningVar = Tensor.ones([features])
        numBatchesTracked = Tensor.zeros([1])
        self.eps = eps
        self.momentum = momentum
    }

    public override var localParameters: [(String, Tensor)] {
        [weight.map { ("weight", $0) }, bias.map { ("bias", $0) }].compactMap { $0 }
    }

    public override var localBuffers: [(String, Tensor)] {
        [("running_mean", runningMean), ("running_var", runningVar), ("num_batches_tracked", numBatchesTracked)]
    }

    /// x [..., C] → [..., C]: batch statistics (and a running-statistics update) in training mode,
    /// running statistics in eval mode.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.rank >= 2 && x.shape.last == features,
                     "BatchNorm(\(features)): input \(x.shape) must be [..., \(features)] (channels last)")
        var factor: Float = 0
        if isTraining {
            numBatchesTracked.data[0] += 1
            factor = momentum ?? 1 / numBatchesTracked.data[0]
        }
        return x.batchNorm(weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                           training: isTraining, momentum: factor, eps: eps)
    }
}
