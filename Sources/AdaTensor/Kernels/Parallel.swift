// Our own parallel loops: every kernel's, and the GEMMs' (BLAS.sgemm splits them; OpenBLAS stays
// single-threaded), so one pool of threads owns the cores.
import CBLAS
import CKernels

public enum Runtime {
    /// Threads of the engine's pool, which runs every parallel loop and split GEMM (default: all cores,
    /// or ADAROUTE_THREADS). OpenBLAS itself is kept single-threaded.
    public private(set) static var threads: Int = {
        openblas_set_num_threads(1) // BLAS.sgemm splits GEMMs over our threads itself
        return defaultThreads
    }()

    /// All cores unless ADAROUTE_THREADS says otherwise.
    public static var defaultThreads: Int {
        if let text = ProcessInfoLite.environment("ADAROUTE_THREADS"), let n = Int(text), n > 0 { return n }
        return max(1, ProcessInfoLite.activeProcessorCount)
    }

    /// Sets the thread count for our loops, GEMMs included.
    public static func setThreads(_ count: Int) {
        precondition(count >= 1, "thread count must be ≥ 1, got \(count)")
        threads = count
        openblas_set_num_threads(1) // as the initializer does, in case this is the first use
    }
}

public enum Parallel {
    /// Splits 0..<count into at most `Runtime.threads` contiguous chunks of at least `minimumChunk`
    /// items and runs `body` on each (inline when one chunk suffices).
    @inline(__always)
    public static func chunks(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
        indexedChunks(count, slots: Int.max, minimumChunk: minimumChunk) { _, range in body(range) }
    }

    /// As `chunks`, also passing each chunk's index, distinct and below `slots` (the caller's count of
    /// per-thread scratch buffers: taken as a parameter because the thread count may change meanwhile).
    @inline(__always)
    public static func indexedChunks(_ count: Int, slots: Int, minimumChunk: Int = 1, _ body: (Int, Range<Int>) -> Void) {
        guard count > 0 else { return }
        let pieces = min(slots, Runtime.threads, max(1, count / max(minimumChunk, 1)))
        if pieces <= 1 { body(0, 0..<count); return }
        withoutActuallyEscaping(body) { body in
            var task: (Int) -> Void = { piece in
                let start = count * piece / pieces, end = count * (piece + 1) / pieces
                if start < end { body(piece, start..<end) }
            }
            withUnsafeMutablePointer(to: &task) { pointer in
                ak_pool_run(pieces, Int32(Runtime.threads), { context, piece in
                    context!.assumingMemoryBound(to: ((Int) -> Void).self).pointee(piece)
                }, pointer)
            }
        }
    }

    /// Runs `body(i)` for every i in 0..<count, spread over the threads.
    @inline(__always)
    public static func forEach(_ count: Int, minimumChunk: Int = 1, _ body: (Int) -> Void) {
        chunks(count, minimumChunk: minimumChunk) { range in for i in range { body(i) } }
    }
}

/// The two facts we need from the process, without importing Foundation into the core.
enum ProcessInfoLite {
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        return String(cString: value)
    }
    static var activeProcessorCount: Int { Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
