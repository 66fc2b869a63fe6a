import CKernels
import Synchronization

/// The linear layers' GEMM with its epilogue fused: y = act(x·Wᵀ + b) + r (CKernels/linear_gemm.c, AVX-512).
/// W is packed into 48-column panels on every call (both threads share the packing: 2–3.5 % of ViT inference
/// samples), so a weight changed in place is always seen — except inside `reusingPackedWeights`, where
/// inference keeps each weight's panels.
public enum PackedGEMM {
    public enum Activation: Int32 { case none = 0, gelu = 1 }

    /// The CPU runs the kernel (AVX-512). Elsewhere every linear layer goes through BLAS.
    public static let available = ak_linear_available() != 0

    /// `available`, unless ADAROUTE_PACKED_GEMM=0: then the linear layers and inference attention go through
    /// OpenBLAS as before (kept for A/B benchmarks).
    public static var enabled: Bool = available && ProcessInfoLite.environment("ADAROUTE_PACKED_GEMM") != "0"

    /// Below this many rows OpenBLAS is used: the pack is paid once per call and amortised over the rows.
    static let minimumRows = 32

    /// Also false when the last 16-lane vector's padding would waste more than 1/8 of the work (n < 16 but
    /// for 15 and 14, …): narrow last panels run one- or two-vector tiles, so only that vector is padded.
    /// On 2 threads the kernel matched or beat OpenBLAS + bias fill at every other shape measured, e.g. the
    /// adapters' 1568×64×384 (190 vs 161 GFLOP/s) and a 150-class head's 1568×150×384 (204 vs 185), 2026-12-07.
    public static func handles(rows m: Int, outputs n: Int, inputs k: Int) -> Bool {
        enabled && m >= minimumRows && n > 0 && k > 0 && (n + 15) / 16 * 16 - n <= n / 8
    }

    /// y [m, n] (row stride n) = act(x [m, k]·Wᵀ + bias) + residual, weight [n, k]; bias/residual optional.
    /// Needs `available`.
    public static func linear(rows m: Int, x: UnsafePointer<Float>, weight: Tensor, bias: UnsafePointer<Float>?,
                              residual: UnsafePointer<Float>?, activation: Activation = .none,
                              into y: UnsafeMutablePointer<Float>) {
        precondition(available, "PackedGEMM.linear needs AVX-512")
        precondition(weight.rank == 2, "PackedGEMM.linear: weight must be [N, K], got \(weight.shape)")
        let n = weight.shape[0], k = weight.shape[1]
        let packed = cache.map { $0.packed(weight) } ?? pack(weight)
        let p = packed.pointer
        // Row blocks of 8 (the kernel's tile height), so only the last block has a short tile.
        Parallel.chunks((m + 7) / 8) { blocks in
            ak_linear_rows(n, k, x, k, p, bias, residual, n, y, n, activation.rawValue,
                           blocks.lowerBound * 8, Swift.min(blocks.upperBound * 8, m))
        }
        withExtendedLifetime(packed) {}
    }

    /// y [B, m, n] = x [B, m, k]·W_bᵀ with a weight per sample, W_b = Σ_e weights[b, e]·bank[e] (bank [E, n, k],
    /// weights [B, E]): AdaRoute's routed projections. The bank's experts are packed once and mixed in the
    /// packed layout (ak_linear_mix); then every sample's rows run through the kernel in one parallel region,
    /// where per-sample OpenBLAS calls (and their zeroing pass for beta 0) took ~6 % of ViT-S inference.
    public static func routedLinear(batch: Int, rows m: Int, x: UnsafePointer<Float>, bank: Tensor,
                                    weights: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>) {
        precondition(available, "PackedGEMM.routedLinear needs AVX-512")
        precondition(bank.rank == 3, "PackedGEMM.routedLinear: bank must be [E, N, K], got \(bank.shape)")
        let experts = bank.shape[0], n = bank.shape[1], k = bank.shape[2]
        let size = ak_linear_packed_size(n, k)
        let packedBank = cache.map { $0.packed(bank) } ?? pack(bank)
        let mixed = Storage(uninitializedCount: batch * size)
        let bankPointer = UnsafePointer(packedBank.pointer), mixedPointer = mixed.pointer
        Parallel.chunks(size, minimumChunk: 4096) { range in
            ak_linear_mix(bankPointer, size, experts, batch, weights, mixedPointer, range.lowerBound, range.upperBound)
        }
        let tiles = (m + 7) / 8
        Parallel.chunks(batch * tiles) { range in
            forEachSample(in: range, per: tiles) { b, part in
                ak_linear_rows(n, k, x + b * m * k, k, mixedPointer + b * size, nil, nil, 0, y + b * m * n, n, 0,
                               part.lowerBound * 8, Swift.min(part.upperBound * 8, m))
            }
        }
        withExtendedLifetime((packedBank, mixed)) {}
    }

    /// Splits a range of a flat [B, per] index space at sample boundaries: body(b, range within sample b).
    @inline(__always)
    private static func forEachSample(in range: Range<Int>, per: Int, _ body: (Int, Range<Int>) -> Void) {
        var i = range.lowerBound
        while i < range.upperBound {
            let b = i / per, start = i - b * per, end = Swift.min(per, start + range.upperBound - i)
            body(b, start..<end)
            i += end - start
        }
    }

    /// Runs `body` keeping every weight's packed panels from its first use to the end, instead of packing
    /// it on each call (~3 % of ViT-S inference). The caller promises that no weight changes inside `body`:
    /// true for evaluation and prediction; never wrap training in it (optimizers, and PaCA's partial
    /// columns, write weights in place). Nested calls share the outer cache.
    public static func reusingPackedWeights<T>(_ body: () throws -> T) rethrows -> T {
        if cache != nil { return try body() }
        return try $cache.withValue(WeightCache(), operation: body)
    }

    @TaskLocal static var cache: WeightCache?

    /// A weight [N, K], or a bank [E, N, K] packed expert after expert (each ak_linear_packed_size floats).
    static func pack(_ weight: Tensor) -> Storage {
        let experts = weight.rank == 3 ? weight.shape[0] : 1
        let n = weight.shape[weight.rank - 2], k = weight.shape[weight.rank - 1], panels = ak_linear_panel_count(n)
        let size = ak_linear_packed_size(n, k)
        let packed = Storage(uninitializedCount: experts * size)
        let w = weight.data, p = packed.pointer
        Parallel.chunks(experts * panels) { range in
            forEachSample(in: range, per: panels) { e, part in
                ak_linear_pack(w + e * n * k, k, n, k, 1, p + e * size, part.lowerBound, part.upperBound)
            }
        }
        return packed
    }

    /// Packed panels by weight storage and shape (a bank [E, N, K] packs differently from its [E·N, K] view).
    /// The entry keeps the storage alive, so its identity is never reused.
    final class WeightCache: Sendable {
        struct Key: Hashable { let storage: ObjectIdentifier, shape: [Int] }
        private let entries = Mutex<[Key: (weight: Storage, packed: Storage)]>([:])

        func packed(_ weight: Tensor) -> Storage {
            let key = Key(storage: ObjectIdentifier(weight.storage), shape: weight.shape)
            if let hit = entries.withLock({ $0[key]?.packed }) { return hit }
            let packed = PackedGEMM.pack(weight) // outside the lock: it runs on the pool
            entries.withLock { $0[key] = (weight.storage, packed) }
            return packed
        }
    }
}
