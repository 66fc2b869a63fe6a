// Reverse-mode autograd: every op that reads a tensor needing a gradient attaches a GradFunction to
// its output. `backward()` visits the graph once in reverse topological order; each GradFunction
// accumulates into its inputs' gradients and is released right after it runs, which frees the
// activations it saved.
//
// Nothing is recorded when no input needs a gradient (frozen weights, data, no-grad mode), so a
// frozen backbone costs no graph memory and no backward work at all.

import Dispatch

/// How to propagate an output gradient into the inputs of one op.
final class GradFunction {
    let name: String
    /// Inputs that need a gradient (others are not kept).
    let inputs: [Tensor]
    var backward: ((Tensor) -> Void)?

    init(name: String, inputs: [Tensor], backward: @escaping (Tensor) -> Void) {
        self.name = name
        self.inputs = inputs
        self.backward = backward
    }
}

public enum Autograd {
    @TaskLocal static var enabled = true

    /// True unless inside `withNoGrad`.
    public static var isEnabled: Bool { enabled }

    /// Profiling hook: when set, `backward()` reports each op's name and the seconds its backward took.
    /// nil (the default) costs one branch per op. Task-local, like `enabled`: a profiler sees only its
    /// own backward passes, never another thread's (which would also race on its tallies).
    @TaskLocal public static var backwardObserver: ((String, Double) -> Void)? = nil

    /// Runs `body` with `observer` receiving every op's backward time (see `backwardObserver`).
    public static func observingBackward<T>(_ observer: ((String, Double) -> Void)?, _ body: () throws -> T) rethrows -> T {
        try $backwardObserver.withValue(observer, operation: body)
    }

    /// Runs `body` without recording any graph (inference, metric computation, weight updates).
    public static func withNoGrad<T>(_ body: () throws -> T) rethrows -> T {
        try $enabled.withValue(false, operation: body)
    }
}

extension Tensor {
    /// True if a gradient must flow into this tensor: a trainable leaf or the output of a recorded op.
    public var needsGrad: Bool { requiresGrad || gradFunction != nil }

    /// True for the output of an op that was recorded into the graph.
    public var isRecorded: Bool { gradFunction != nil }

    /// Attaches `backward` to this op output if recording is on and any input needs a gradient.
    /// The closure receives d(loss)/d(self) and must accumulate into the inputs with `accumulateGrad`.
    @inline(__always)
    public func record(_ name: String, _ inputs: [Tensor], backward: @escaping (Tensor) -> Void) {
        guard Autograd.enabled else { return }
        let live = inputs.filter { $0.needsGrad }
        guard !live.isEmpty else { return }
        gradFunction = GradFunction(name: name, inputs: live, backward: backward)
    }

    /// Calls `body` with this tensor's gradient buffer (zero-filled on first use) so a backward can
    /// add into it; does nothing if this tensor needs no gradient.
    @inline(__always)
    public func accumulateGrad(_ body: (UnsafeMutablePointer<Float>) -> Void) {
        guard needsGrad else { return }
        if grad == nil { grad = Tensor.zeros(shape) }
        body(grad!.data)
    }

    /// Adds a whole tensor into this tensor's gradient.
    public func accumulateGrad(_ g: Tensor) {
        precondition(g.count == count, "gradient \(g.shape) for tensor \(shape)")
        accumulateGrad(adding: g.data)
    }

    /// Adds `count` values into this tensor's gradient; the first contribution is copied, not added
    /// to zeros (one pass instead of three).
    public func accumulateGrad(adding src: UnsafePointer<Float>) {
        guard needsGrad else { return }
        let n = count
        if let grad {
            let dst = grad.data
            Parallel.chunks(n, minimumChunk: 65536) { r in Vector.add(src + r.lowerBound, into: dst + r.lowerBound, count: r.count) }
        } else {
            let fresh = Tensor(uninitializedShape: shape)
            let dst = fresh.data
            Parallel.chunks(n, minimumChunk: 65536) { r in (dst + r.lowerBound).update(from: src + r.lowerBound, count: r.count) }
            grad = fresh
        }
    }

    /// Makes `g`'s storage this tensor's gradient when it has none yet and the shapes match; returns
    /// whether it did. Only for an op's output gradient `gy`, which is dead once that op's backward
    /// returns, and only for one input per op (two inputs sharing one buffer would corrupt each other).
    public func takeGrad(_ g: Tensor) -> Bool {
        guard needsGrad, grad == nil, g.shape == shape else { return false }
        grad = Tensor(shape: shape, storage: g.storage)
        return true
    }

    /// Back-propagates from this tensor. Without `gradient` the tensor must hold one element (a loss)
    /// and is seeded with 1. Gradients of trainable leaves accumulate (call `zeroGrad` between steps).
    public func backward(gradient: Tensor? = nil) {
        if let gradient {
            precondition(gradient.count == count, "backward: gradient \(gradient.shape) for \(shape)")
        } else {
            precondition(count == 1, "backward() without a gradient needs a scalar, shape is \(shape)")
        }
        guard needsGrad else { return }
        let order = topologicalOrder()
        if let gradient { accumulateGrad(gradient) } else { accumulateGrad { $0[0] += 1 } }
        let observer = Autograd.backwardObserver
        for tensor in order.reversed() {
            guard let function = tensor.gradFunction else { continue }
            if let g = tensor.grad {
                if let observer {
                    let start = DispatchTime.now().uptimeNanoseconds
                    function.backward?(g)
                    observer(function.name, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
                } else {
                    function.backward?(g)
                }
            }
            function.backward = nil
            tensor.gradFunction = nil
            tensor.grad = nil // an intermediate's gradient is dead once passed on
        }
    }

    /// Op outputs reachable from self, every tensor after the ones it depends on (iterative DFS).
    private func topologicalOrder() -> [Tensor] {
        var order: [Tensor] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(Tensor, Bool)] = [(self, false)]
        while let (tensor, expanded) = stack.popLast() {
            if expanded { order.append(tensor); continue }
            guard let function = tensor.gradFunction,
                  seen.insert(ObjectIdentifier(tensor)).inserted else { continue }
            stack.append((tensor, true))
            for input in function.inputs where input.gradFunction != nil {
                stack.append((input, false))
            }
        }
        return order
    }

    /// Number of recorded ops reachable from this tensor (0 when nothing needs a gradient).
    public var graphSize: Int { topologicalOrder().count }
}
