// AdaptFormer (Chen et al., NeurIPS 2022; ShoufaChen/AdaptFormer models/adapter.py) as its ViT config
// uses it: a bottleneck branch in parallel to every block's MLP, with layer-norm option "none" and
// init option "lora":
//
//   branch(x) = scale · up(dropout(relu(down(x))))     x = the MLP sub-layer's input (before norm2)
//
// down_proj Linear(D, b): weight kaiming_uniform(a=√5), bias 0; up_proj Linear(b, D): weight 0, bias 0 —
// so the branch is exactly 0 at init and the model starts as the frozen one. Dropout (default 0.1)
// acts in training only. Names: blocks.{i}.adaptmlp.{down_proj,up_proj}.{weight,bias}.
//
// Legend: M rows (all tokens of the batch), D width, b bottleneck.
import AdaNN
import AdaTensor

public struct AdaptFormerConfig: Equatable, Sendable, Codable {
    /// Bottleneck width b (official ffn_num).
    public var bottleneck: Int = 64
    /// Fixed factor on the branch (official ffn_adapter_scalar).
    public var scale: Float = 0.1
    /// Dropout after the ReLU, training only.
    public var dropout: Float = 0.1

    public init(bottleneck: Int = 64, scale: Float = 0.1, dropout: Float = 0.1) {
        self.bottleneck = bottleneck
        self.scale = scale
        self.dropout = dropout
    }

    /// Missing keys keep their defaults, so a config may give only what it changes.
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        bottleneck = try c.decodeIfPresent(Int.self, forKey: .bottleneck) ?? 64
        scale = try c.decodeIfPresent(Float.self, forKey: .scale) ?? 0.1
        dropout = try c.decodeIfPresent(Float.self, forKey: .dropout) ?? 0.1
    }
}

public final class AdaptFormerAdapter: Module, ParallelMLPAdapter {
    public let name = "adaptmlp"
    public let downProj: Linear   // D → b
    public let upProj: Linear     // b → D
    public let scale: Float
    public let dropout: Float

    public init(dim: Int, config: AdaptFormerConfig, generator: inout RandomGenerator) {
        precondition(config.bottleneck > 0, "AdaptFormer bottleneck must be positive, got \(config.bottleneck)")
        precondition(config.dropout >= 0 && config.dropout < 1,
                     "AdaptFormer dropout must be in [0, 1), got \(config.dropout)")
        downProj = Linear(weight: Tensor.kaimingUniform([config.bottleneck, dim], fanIn: dim, using: &generator,
                                                        requiresGrad: true),
                          bias: Tensor.zeros([config.bottleneck], requiresGrad: true))
        upProj = Linear(weight: Tensor.zeros([dim, config.bottleneck], requiresGrad: true),
                        bias: Tensor.zeros([dim], requiresGrad: true))
        scale = config.scale
        dropout = config.dropout
    }

    public override var children: [(String, Module)] { [("down_proj", downProj), ("up_proj", upProj)] }

    /// x [B, T, D] (the block's input to its MLP sub-layer) → the branch [B, T, D].
    public func callAsFunction(_ x: Tensor, context: ForwardContext) -> Tensor {
        precondition(x.shape.last == downProj.inFeatures,
                     "AdaptFormer: input \(x.shape) does not match width \(downProj.inFeatures)")
        var hidden = downProj(x, context: context).relu()
        if isTraining && dropout > 0 { hidden = hidden.dropout(probability: dropout, generator: &context.generator) }
        // The scale rides on the up GEMM (alpha) instead of a separate pass over [M, D].
        return hidden.scaledLinear(upProj.weight, bias: upProj.bias, scale: scale)
    }
}

public enum AdaptFormer {
    /// Puts a fresh branch beside the MLP of every block.
    public static func inject(_ config: AdaptFormerConfig, into backbone: VisionTransformer,
                              generator: inout RandomGenerator) {
        for block in backbone.blocks {
            precondition(block.mlpAdapter == nil, "AdaptFormer: a block already has a parallel MLP adapter")
            block.mlpAdapter = AdaptFormerAdapter(dim: backbone.config.embedDim, config: config, generator: &generator)
        }
    }
}

extension Tensor {
    /// y = scale·(x·Wᵀ + b) over the last axis: x [..., K], weight [N, K], bias [N]. One GEMM with
    /// alpha = scale (the bias row is pre-scaled), and the same folding in the backward.
    public func scaledLinear(_ weight: Tensor, bias: Tensor?, scale s: Float) -> Tensor {
        let x = self
        precondition(weight.rank == 2 && x.rank >= 1 && x.shape.last == weight.shape[1],
                     "scaledLinear: input \(x.shape) does not match weight \(weight.shape)")
        let k = weight.shape[1], n = weight.shape[0], m = x.count / max(k, 1)
        if let bias { precondition(bias.shape == [n], "scaledLinear: bias \(bias.shape) for \(n) outputs") }
        let y = Tensor(uninitializedShape: Array(x.shape.dropLast()) + [n])
        if let bias, m > 0 {
            for r in 0..<n { y.data[r] = s * bias.data[r] }
            for row in 1..<m { (y.data + row * n).update(from: y.data, count: n) }
        }
        BLAS.sgemm(transposeA: false, transposeB: true, m: m, n: n, k: k, alpha: s, a: x.data, lda: k,
                   b: weight.data, ldb: k, beta: bias == nil ? 0 : 1, c: y.data, ldc: n)
        y.record("scaled_linear", [x, weight] + (bias.map { [$0] } ?? [])) { gy in
            // dx += s·gy·W ; dW += s·gyᵀ·x ; db += s·Σ_rows gy
            x.accumulateGrad { gx in
                BLAS.sgemm(transposeA: false, transposeB: false, m: m, n: k, k: n, alpha: s, a: gy.data, lda: n,
                           b: weight.data, ldb: k, beta: 1, c: gx, ldc: k)
            }
            weight.accumulateGrad { gw in
                BLAS.sgemm(transposeA: true, transposeB: false, m: n, n: k, k: m, alpha: s, a: gy.data, lda: n,
                           b: x.data, ldb: k, beta: 1, c: gw, ldc: k)
            }
            bias?.accumulateGrad { gb in
                let sums = Tensor.zeros([n])
                Vector.addColumnSums(gy.data, rows: m, cols: n, into: sums.data)
                Vector.axpy(s, sums.data, into: gb, count: n)
            }
        }
        return y
    }
}
