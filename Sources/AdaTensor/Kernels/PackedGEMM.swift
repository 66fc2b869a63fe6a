import CKernels

/// The linear layers' GEMM with its epilogue fused: y = act(x·Wᵀ + b) + r (CKernels/linear_gemm.c, AVX-512).
/// W is packed into 48-column panels on every call (both threads share the packing, ~1 % of the GEMM), so
/// nothing is cached and a weight changed in place is always seen.
public enum PackedGEMM {
    public enum Activation: Int32 { case none = 0, gelu = 1 }

    /// The CPU runs the kernel (AVX-512). Elsewhere every linear layer goes through BLAS.
    public static let available = ak_linear_available() != 0

    /// `available`, unless ADAROUTE_PACKED_GEMM=0 (kept for A/B benchmarks against OpenBLAS).
    public static var enabled: Bool = available && ProcessInfoLite.environment("ADAROUTE_PACKED_GEMM") != "0"

    /// Below this many rows OpenBLAS is used: the pack is paid once per call and amortised over the rows.
    static let minimumRows = 32

    /// Also false when the zero-padding of the last panel would waste more than 1/8 of the work (e.g. the
    /// adapters' 64 outputs, a head's 150 classes): OpenBLAS is faster there.
    public static func handles(rows m: Int, outputs n: Int, inputs k: Int) -> Bool {
        enabled && m >= minimumRows && n > 0 && k > 0 && ak_linear_panel_count(n) * 48 - n <= n / 8
    }

    /// y [m, n] (row stride n) = act(x [m, k]·Wᵀ + bias) + residual, W [n, k]; bias/residual optional.
    /// Needs `available`.
    public static func linear(rows m: Int, outputs n: Int, inputs k: Int, x: UnsafePointer<Float>,
                              weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?,
                              residual: UnsafePointer<Float>?, activation: Activation = .none,
                              into y: UnsafeMutablePointer<Float>) {
        precondition(available, "PackedGEMM.linear needs AVX-512")
        let panels = ak_linear_panel_count(n)
        let packed = Storage(uninitializedCount: panels * k * 48)
        let p = packed.pointer
        Parallel.chunks(panels) { range in
            ak_linear_pack(weight, k, n, k, 1, p, range.lowerBound, range.upperBound)
        }
        // Row blocks of 8 (the kernel's tile height), so only the last block has a short tile.
        Parallel.chunks((m + 7) / 8) { blocks in
            ak_linear_rows(n, k, x, k, p, bias, residual, n, y, n, activation.rawValue,
                           blocks.lowerBound * 8, Swift.min(blocks.upperBound * 8, m))
        }
        withExtendedLifetime(packed) {}
    }
}
