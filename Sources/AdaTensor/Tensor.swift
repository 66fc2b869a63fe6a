import CKernels

// Tensor: float32, contiguous, row-major, with an optional link into the autograd graph.
//
// A tensor is a reference type: the graph needs identity (a gradient belongs to one tensor), and
// reshapes share storage instead of copying.

/// The memory behind one or more tensors: 64-byte aligned float32, freed when the last tensor goes.
public final class Storage: @unchecked Sendable {
    public let pointer: UnsafeMutablePointer<Float>
    public let count: Int

    /// Uninitialised memory for `count` floats (callers overwrite every element).
    public init(uninitializedCount count: Int) {
        precondition(count >= 0, "negative element count \(count)")
        _ = Storage.allocatorTuned
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(count, 1) * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        self.count = count
    }

    public convenience init(zeroedCount count: Int) {
        self.init(uninitializedCount: count)
        pointer.update(repeating: 0, count: count)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }

    /// Keep large freed blocks in the heap for reuse instead of returning them to the kernel: a
    /// training step allocates the same activation sizes every iteration, and a fresh mmap costs a
    /// page fault per 4 KiB (≈10 % of a 2048² GEMM). Peak memory is unchanged.
    static let allocatorTuned: Void = {
        ak_tune_allocator()
    }()
}

public final class Tensor: @unchecked Sendable {
    public let shape: [Int]
    public let storage: Storage
    /// A trainable leaf: backward() accumulates into `grad`. Frozen parameters and inputs keep false.
    public var requiresGrad: Bool
    /// Accumulated gradient of a trainable leaf (nil until a backward reaches it).
    public var grad: Tensor?
    /// For op outputs that depend on a trainable tensor: how to send the gradient to the inputs.
    var gradFunction: GradFunction?
    /// Optional label, used in error messages and checkpoints.
    public var name: String?

    public var count: Int { storage.count }
    public var rank: Int { shape.count }
    public var data: UnsafeMutablePointer<Float> { storage.pointer }

    /// Wraps existing storage; `shape` must describe exactly `storage.count` elements.
    public init(shape: [Int], storage: Storage, requiresGrad: Bool = false) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(shape.reduce(1, *) == storage.count,
                     "shape \(shape) has \(shape.reduce(1, *)) elements but storage has \(storage.count)")
        self.shape = shape
        self.storage = storage
        self.requiresGrad = requiresGrad
    }

    /// Uninitialised tensor, for op outputs that write every element.
    public convenience init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: Storage(uninitializedCount: shape.reduce(1, *)))
    }

    public convenience init(shape: [Int], values: [Float], requiresGrad: Bool = false) {
        precondition(values.count == shape.reduce(1, *),
                     "\(values.count) values for shape \(shape) (\(shape.reduce(1, *)) elements)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: values.count) }
        self.requiresGrad = requiresGrad
    }

    public convenience init(_ values: [Float], requiresGrad: Bool = false) {
        self.init(shape: [values.count], values: values, requiresGrad: requiresGrad)
    }

    public static func zeros(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        Tensor(shape: shape, storage: Storage(zeroedCount: shape.reduce(1, *)), requiresGrad: requiresGrad)
    }

    public static func full(_ shape: [Int], _ value: Float, requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.data.update(repeating: value, count: t.count)
        t.requiresGrad = requiresGrad
        return t
    }

    public static func ones(_ shape: [Int], requiresGrad: Bool = false) -> Tensor {
        full(shape, 1, requiresGrad: requiresGrad)
    }

    /// 0, step, 2·step, … (`count` values).
    public static func arange(_ count: Int, start: Float = 0, step: Float = 1) -> Tensor {
        let t = Tensor(uninitializedShape: [count])
        for i in 0..<count { t.data[i] = start + Float(i) * step }
        return t
    }

    public static func scalar(_ value: Float) -> Tensor { Tensor(shape: [], values: [value]) }

    /// The elements as a Swift array (copies).
    public var values: [Float] { Array(UnsafeBufferPointer(start: data, count: count)) }

    /// The single value of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, shape is \(shape)")
        return data[0]
    }

    public subscript(flat index: Int) -> Float {
        get { data[index] }
        set { data[index] = newValue }
    }

    /// A new tensor with its own copy of the values, outside any graph.
    public func copy() -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        t.data.update(from: data, count: count)
        return t
    }

    /// Overwrites the values in place (shapes must hold the same number of elements).
    public func assign(_ other: Tensor) {
        precondition(other.count == count, "assign: \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    /// The same values, cut from the graph (like PyTorch's detach).
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = values.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(\(shape)\(name.map { " \($0)" } ?? ""): [\(shown)\(count > 8 ? ", …" : "")])"
    }
}

public extension Array where Element == Int {
    /// Number of elements of a shape.
    var elementCount: Int { reduce(1, *) }
}
