// The adapter slot after a ViT block: a module that rewrites the patch tokens (CLS passes by).
import AdaNN
import AdaTensor

public protocol BlockAdapter: Module {
    /// patches [B, L, D] on an h×w grid → [B, L, D]. `name` labels probed activations ("adapter3").
    func callAsFunction(_ patches: Tensor, gridHeight: Int, gridWidth: Int, context: ForwardContext, name: String) -> Tensor
}
