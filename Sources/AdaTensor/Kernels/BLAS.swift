// The engine's only caller of CBLAS. OpenBLAS (LP64) takes Int32 sizes.
import CBLAS

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
        cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    /// Runs `body` with OpenBLAS single-threaded, for code that calls many small GEMMs from our own
    /// parallel loop (one GEMM per thread at a time beats splitting each small GEMM over the cores).
    /// Nothing else calls BLAS meanwhile: ops run one after another on the calling thread.
    public static func singleThreaded<T>(_ body: () throws -> T) rethrows -> T {
        guard Runtime.threads > 1 else { return try body() }
        openblas_set_num_threads(1)
        defer { openblas_set_num_threads(Int32(Runtime.threads)) }
        return try body()
    }
}
