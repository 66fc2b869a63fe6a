// The engine's only caller of CBLAS. OpenBLAS (LP64) takes Int32 sizes.
import CBLAS
import CKernels

public enum BLAS {
    /// C = alpha · op(A) · op(B) + beta · C, row-major; op(A) is M×K, op(B) is K×N, C is M×N.
    @inline(__always)
    public static func sgemm(
        transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            if beta == 0 { for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) } }
            else if beta != 1 { for i in 0..<m { Vector.scale(c + i * ldc, by: beta, count: n) } }
            return
        }
        precondition(m <= Int32.max && n <= Int32.max && k <= Int32.max, "GEMM size exceeds Int32")
        // OpenBLAS itself always runs single-threaded: its idle workers spin in sched_yield for ~0.1 s after
        // every call and took 15–20 % of both cores from our own loops (perf, ViT-Ti inference). Large
        // GEMMs are split into row (or column) blocks over our threads instead.
        let pieces = ak_pool_inside_job() != 0 ? 1 : Swift.min(Runtime.threads, m * n * k / minimumWorkPerThread)
        if pieces > 1 && (m >= 32 * pieces || n >= 32 * pieces) {
            let splitRows = m >= n || n < 32 * pieces
            let extent = splitRows ? m : n
            // Block edges on multiples of 16 keep each block's rows/columns aligned with the kernel's panels.
            Parallel.forEach(pieces) { piece in
                let start = (extent * piece / pieces) & ~15, end = piece == pieces - 1 ? extent : (extent * (piece + 1) / pieces) & ~15
                guard start < end else { return }
                if splitRows {
                    let ap = transposeA ? a + start : a + start * lda
                    call(transposeA, transposeB, end - start, n, k, alpha, ap, lda, b, ldb, beta, c + start * ldc, ldc)
                } else {
                    let bp = transposeB ? b + start * ldb : b + start
                    call(transposeA, transposeB, m, end - start, k, alpha, a, lda, bp, ldb, beta, c + start, ldc)
                }
            }
        } else {
            call(transposeA, transposeB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
        }
    }

    /// Multiply-adds below which one thread does the whole GEMM (~20 µs of work; a parallel region costs a few µs).
    static let minimumWorkPerThread = 1 << 20

    @inline(__always)
    private static func call(
        _ transposeA: Bool, _ transposeB: Bool, _ m: Int, _ n: Int, _ k: Int, _ alpha: Float,
        _ a: UnsafePointer<Float>, _ lda: Int, _ b: UnsafePointer<Float>, _ ldb: Int, _ beta: Float,
        _ c: UnsafeMutablePointer<Float>, _ ldc: Int
    ) {
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }
}
