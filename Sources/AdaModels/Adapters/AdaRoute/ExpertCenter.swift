// The shared expert center: E slots of every adapter weight, shared by all adapters of the ViT
// (official `peft_params`). Plain trainable tensors, trunc_normal(std 0.02) init.
//
// Legend: E expert slots, r rank, D width, k kernel size.
import AdaNN
import AdaTensor

public final class ExpertCenter: Module {
    public let projA: Tensor           // [E, r, D]  (down projections, Linear out×in layout)
    public let projB: Tensor           // [E, D, r]  (up projections)
    public let kernels: [(size: Int, weight: Tensor)] // conv{k}: [E, r, 1, k, k]

    public var experts: Int { projA.shape[0] }

    public init(dim: Int, config: AdaRouteConfig, experts: Int, generator: inout RandomGenerator) {
        let r = config.rank
        projA = Tensor.truncatedNormal([experts, r, dim], std: 0.02, using: &generator, requiresGrad: true)
        projB = Tensor.truncatedNormal([experts, dim, r], std: 0.02, using: &generator, requiresGrad: true)
        kernels = config.kernelSizes.map { k in
            (k, Tensor.truncatedNormal([experts, r, 1, k, k], std: 0.02, using: &generator, requiresGrad: true))
        }
    }

    public override var localParameters: [(String, Tensor)] {
        [("projA", projA), ("projB", projB)] + kernels.map { ("conv\($0.size)", $0.weight) }
    }

    /// Σ_e weights[b, e] · bank[e] → one mixed tensor per sample, shaped [B] + bank.shape.dropFirst().
    static func mix(_ bank: Tensor, weights: Tensor) -> Tensor {
        let slot = Array(bank.shape.dropFirst())
        return weights.matmul(bank.reshaped([bank.shape[0], slot.elementCount])).reshaped([weights.shape[0]] + slot)
    }
}
