// timm's VisionTransformer (pre-norm blocks, fused qkv, LayerNorm eps 1e-6, exact GELU, CLS token,
// learned absolute position embedding) with timm's parameter names, so a timm model.safetensors loads
// by name: patch_embed.proj.{weight,bias}, cls_token, pos_embed, blocks.{i}.{norm1,attn.qkv,attn.proj,
// norm2,mlp.fc1,mlp.fc2}.{weight,bias}, norm.{weight,bias}.
//
// Legend: B batch, N patch tokens (grid h×w), T = N + 1 tokens with CLS, D width.
import AdaNN
import AdaTensor

public final class Attention: Module {
    public let qkv: Linear
    public let proj: Linear
    public let heads: Int

    init(dim: Int, heads: Int, qkvBias: Bool, generator: inout RandomGenerator) {
        precondition(dim % heads == 0, "embed dim \(dim) is not divisible by \(heads) heads")
        qkv = Linear(dim, 3 * dim, bias: qkvBias, generator: &generator)
        proj = Linear(dim, dim, generator: &generator)
        self.heads = heads
    }

    public override var children: [(String, Module)] { [("qkv", qkv), ("proj", proj)] }

    /// x [B, T, D] → [B, T, D] (plus `residual`, added inside the output projection).
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, context: ForwardContext) -> Tensor {
        proj(qkv(x, context: context).attention(heads: heads), residual: residual, context: context)
    }
}

public final class MLP: Module {
    public let fc1: Linear
    public let fc2: Linear

    init(dim: Int, hidden: Int, generator: inout RandomGenerator) {
        fc1 = Linear(dim, hidden, generator: &generator)
        fc2 = Linear(hidden, dim, generator: &generator)
    }

    public override var children: [(String, Module)] { [("fc1", fc1), ("fc2", fc2)] }

    /// fc2(gelu(fc1(x))) (plus `residual`, added inside fc2; the GELU inside fc1's GEMM when inferring).
    public func callAsFunction(_ x: Tensor, residual: Tensor? = nil, context: ForwardContext) -> Tensor {
        let hidden = fc1.adapter == nil ? x.linearGELU(fc1.weight, bias: fc1.bias) : fc1(x, context: context).gelu()
        return fc2(hidden, residual: residual, context: context)
    }
}

/// A branch added in parallel to a block's MLP (AdaptFormer): receives the MLP sub-layer's input.
public protocol ParallelMLPAdapter: Module {
    var name: String { get }
    func callAsFunction(_ x: Tensor, context: ForwardContext) -> Tensor
}

public final class Block: Module {
    public let norm1: LayerNorm
    public let attn: Attention
    public let norm2: LayerNorm
    public let mlp: MLP
    public let dropPath: Float
    public var mlpAdapter: ParallelMLPAdapter?

    init(config: ViTConfig, dropPath: Float, generator: inout RandomGenerator) {
        norm1 = LayerNorm(config.embedDim, eps: config.layerNormEps)
        attn = Attention(dim: config.embedDim, heads: config.heads, qkvBias: config.qkvBias, generator: &generator)
        norm2 = LayerNorm(config.embedDim, eps: config.layerNormEps)
        mlp = MLP(dim: config.embedDim, hidden: config.mlpHidden, generator: &generator)
        self.dropPath = dropPath
    }

    public override var children: [(String, Module)] {
        [("norm1", norm1), ("attn", attn), ("norm2", norm2), ("mlp", mlp)] + (mlpAdapter.map { [($0.name, $0 as Module)] } ?? [])
    }

    /// x [B, T, D] → [B, T, D]: x + attn(norm1(x)); x + mlp(norm2(x)) (+ the parallel adapter).
    public func callAsFunction(_ x: Tensor, context: ForwardContext) -> Tensor {
        // Without drop-path the residual adds go into the output GEMMs (one pass and buffer fewer each).
        if !(isTraining && dropPath > 0) && mlpAdapter == nil {
            let h = attn(norm1(x), residual: x, context: context)
            return mlp(norm2(h), residual: h, context: context)
        }
        var h = x + residualBranch(attn(norm1(x), context: context), context: context)
        var branch = mlp(norm2(h), context: context)
        branch = residualBranch(branch, context: context)
        if let mlpAdapter { branch = branch + mlpAdapter(h, context: context) }
        h = h + branch
        return h
    }

    private func residualBranch(_ y: Tensor, context: ForwardContext) -> Tensor {
        guard isTraining, dropPath > 0 else { return y }
        return y.dropPath(probability: dropPath, generator: &context.generator)
    }
}

public final class VisionTransformer: Module {
    public let config: ViTConfig
    public let patchWeight: Tensor  // [D, 3, p, p]
    public let patchBias: Tensor    // [D]
    public let clsToken: Tensor     // [1, 1, D]
    public let posEmbed: Tensor     // [1, 1 + h·w, D]
    public let blocks: [Block]
    public let norm: LayerNorm

    /// Random initialisation as timm's (trunc_normal std .02 for pos/cls tokens and linear weights,
    /// zero biases, LayerNorm 1/0) — used when no pretrained weights are given.
    public init(config: ViTConfig, generator: inout RandomGenerator) {
        self.config = config
        let d = config.embedDim, p = config.patchSize
        patchWeight = Tensor.kaimingUniform([d, 3, p, p], fanIn: 3 * p * p, using: &generator, requiresGrad: true)
        patchBias = Tensor.zeros([d], requiresGrad: true)
        clsToken = Tensor.truncatedNormal([1, 1, d], std: 1e-6, using: &generator, requiresGrad: true)
        posEmbed = Tensor.truncatedNormal([1, 1 + config.gridHeight * config.gridWidth, d], std: 0.02,
                                          using: &generator, requiresGrad: true)
        var blocks: [Block] = []
        for i in 0..<config.depth {
            // timm: drop-path rate grows linearly with depth.
            let rate = config.depth > 1 ? config.dropPathRate * Float(i) / Float(config.depth - 1) : config.dropPathRate
            blocks.append(Block(config: config, dropPath: rate, generator: &generator))
        }
        self.blocks = blocks
        norm = LayerNorm(d, eps: config.layerNormEps)
        super.init()
        for (_, module) in namedModules() {
            if let linear = module as? Linear {
                linear.weight.assign(Tensor.truncatedNormal(linear.weight.shape, std: 0.02, using: &generator))
                if let b = linear.bias { b.assign(Tensor.zeros(b.shape)) }
            }
        }
    }

    public override var localParameters: [(String, Tensor)] {
        [("cls_token", clsToken), ("pos_embed", posEmbed), ("patch_embed.proj.weight", patchWeight),
         ("patch_embed.proj.bias", patchBias)]
    }
    public override var children: [(String, Module)] {
        blocks.enumerated().map { ("blocks.\($0.offset)", $0.element as Module) } + [("norm", norm)]
    }

    /// images [B, 3, H, W] → tokens [B, 1 + N, D] (CLS first, position embedding added).
    public func embed(_ images: Tensor) -> Tensor {
        precondition(images.rank == 4 && images.shape[1] == 3, "images must be [B, 3, H, W], got \(images.shape)")
        let (h, w) = (images.shape[2] / config.patchSize, images.shape[3] / config.patchSize)
        let patches = images.patchEmbedding(weight: patchWeight, bias: patchBias)       // [B, N, D]
        let cls = clsToken.expanded(to: [images.shape[0], 1, config.embedDim])
        let tokens = Tensor.concat([cls, patches], axis: 1)
        return tokens + positionEmbedding(gridHeight: h, gridWidth: w)
    }

    /// The position embedding for a token grid; resampled (bicubic, as timm) when the grid differs
    /// from the one the model was built for — then it is a constant (no gradient).
    public func positionEmbedding(gridHeight h: Int, gridWidth w: Int) -> Tensor {
        if h == config.gridHeight && w == config.gridWidth { return posEmbed }
        precondition(!(posEmbed.requiresGrad && Autograd.isEnabled),
                     "training at a \(h)×\(w) token grid needs a model built for that grid (pos_embed is \(config.gridHeight)×\(config.gridWidth))")
        return PositionEmbedding.resample(posEmbed, from: (config.gridHeight, config.gridWidth), to: (h, w))
    }
}
