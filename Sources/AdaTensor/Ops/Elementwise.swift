// Elementwise arithmetic with broadcasting (+, −, ×, ÷), scalar forms, and unary math.
import CKernels

extension Tensor {
    /// out = f(a, b) with broadcasting; `f` is inlined into the loop.
    @inline(__always)
    static func broadcastMap(_ a: Tensor, _ b: Tensor, _ op: String,
                             _ f: (Float, Float) -> Float) -> (Tensor, [Int]) {
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("\(op): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let y = Tensor(uninitializedShape: shape)
        let pa = a.data, pb = b.data, py = y.data
        if a.shape == b.shape {
            Parallel.chunks(y.count, minimumChunk: 32768) { r in for i in r { py[i] = f(pa[i], pb[i]) } }
        } else {
            let sa = Broadcast.strides(of: a.shape, in: shape), sb = Broadcast.strides(of: b.shape, in: shape)
            Broadcast.forEachRow(shape, sa, sb) { o, oa, ob, n, stepA, stepB in
                // Unit and zero steps get their own loops so the compiler vectorises them.
                let x = pa + oa, z = pb + ob, out = py + o
                switch (stepA, stepB) {
                case (1, 1): for j in 0..<n { out[j] = f(x[j], z[j]) }
                case (1, 0): let c = z[0]; for j in 0..<n { out[j] = f(x[j], c) }
                case (0, 1): let c = x[0]; for j in 0..<n { out[j] = f(c, z[j]) }
                default: for j in 0..<n { out[j] = f(x[j * stepA], z[j * stepB]) }
                }
            }
        }
        return (y, shape)
    }

    /// Adds `g` (the output gradient, of the broadcast shape) into this tensor's gradient,
    /// summing over the axes along which this tensor was repeated.
    func accumulateBroadcastGrad(_ g: UnsafePointer<Float>, outputShape: [Int]) {
        if outputShape == shape { accumulateGrad(adding: g); return }
        accumulateGrad { dst in Broadcast.addReduced(g, from: outputShape, into: dst, target: shape) }
    }

    /// The gradient of one operand computed elementwise in the output shape, then reduced.
    @inline(__always)
    func accumulateBroadcastGrad(outputShape: [Int], other: Tensor, otherIsRight: Bool,
                                 _ f: (Float, Float, Float) -> Float, gy: Tensor, me: Tensor) {
        guard needsGrad else { return }
        let (a, b) = otherIsRight ? (me, other) : (other, me)
        let sa = Broadcast.strides(of: a.shape, in: outputShape), sb = Broadcast.strides(of: b.shape, in: outputShape)
        let pa = a.data, pb = b.data, pg = gy.data
        /// out[j] (+)= f(g, a, b) over one row; unit and zero steps vectorise.
        @inline(__always) func row(_ out: UnsafeMutablePointer<Float>, _ o: Int, _ oa: Int, _ ob: Int, _ n: Int,
                                   _ stepA: Int, _ stepB: Int, accumulate: Bool) {
            let g = pg + o, x = pa + oa, z = pb + ob
            switch (stepA, stepB, accumulate) {
            case (1, 0, true): let c = z[0]; for j in 0..<n { out[j] += f(g[j], x[j], c) }
            case (0, 1, true): let c = x[0]; for j in 0..<n { out[j] += f(g[j], c, z[j]) }
            case (1, 0, false): let c = z[0]; for j in 0..<n { out[j] = f(g[j], x[j], c) }
            case (0, 1, false): let c = x[0]; for j in 0..<n { out[j] = f(g[j], c, z[j]) }
            case (_, _, true): for j in 0..<n { out[j] += f(g[j], x[j * stepA], z[j * stepB]) }
            case (_, _, false): for j in 0..<n { out[j] = f(g[j], x[j * stepA], z[j * stepB]) }
            }
        }
        if shape == outputShape { // no reduction: straight into the gradient
            accumulateGrad { gx in
                Broadcast.forEachRow(outputShape, sa, sb) { o, oa, ob, n, stepA, stepB in
                    row(gx + o, o, oa, ob, n, stepA, stepB, accumulate: true)
                }
            }
            return
        }
        let tmp = Tensor(uninitializedShape: outputShape)
        let pt = tmp.data
        Broadcast.forEachRow(outputShape, sa, sb) { o, oa, ob, n, stepA, stepB in
            row(pt + o, o, oa, ob, n, stepA, stepB, accumulate: false)
        }
        accumulateBroadcastGrad(pt, outputShape: outputShape)
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "add") { $0 + $1 }
        y.record("add", [a, b]) { gy in
            // The output gradient is passed on by reference to one input when it can be (residual adds).
            let taken = a.takeGrad(gy)
            if !taken { a.accumulateBroadcastGrad(gy.data, outputShape: shape) }
            if taken || !b.takeGrad(gy) { b.accumulateBroadcastGrad(gy.data, outputShape: shape) }
        }
        return y
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "sub") { $0 - $1 }
        y.record("sub", [a, b]) { gy in
            if b.needsGrad {
                let negated = Tensor(uninitializedShape: shape)
                for i in 0..<negated.count { negated.data[i] = -gy.data[i] }
                b.accumulateBroadcastGrad(negated.data, outputShape: shape)
            }
            if !a.takeGrad(gy) { a.accumulateBroadcastGrad(gy.data, outputShape: shape) }
        }
        return y
    }

    public static func * (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "mul") { $0 * $1 }
        y.record("mul", [a, b]) { gy in
            a.accumulateBroadcastGrad(outputShape: shape, other: b, otherIsRight: true, { g, _, vb in g * vb }, gy: gy, me: a)
            b.accumulateBroadcastGrad(outputShape: shape, other: a, otherIsRight: false, { g, va, _ in g * va }, gy: gy, me: b)
        }
        return y
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "div") { $0 / $1 }
        y.record("div", [a, b]) { gy in
            a.accumulateBroadcastGrad(outputShape: shape, other: b, otherIsRight: true, { g, _, vb in g / vb }, gy: gy, me: a)
            b.accumulateBroadcastGrad(outputShape: shape, other: a, otherIsRight: false,
                                      { g, va, vb in -g * va / (vb * vb) }, gy: gy, me: b)
        }
        return y
    }

    /// y = f(x) elementwise, with dy/dx given as a function of (x, y).
    @inline(__always)
    func unary(_ name: String, _ f: (Float) -> Float, derivative: @escaping (Float, Float) -> Float) -> Tensor {
        let x = self
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        Parallel.chunks(count, minimumChunk: 32768) { r in for i in r { py[i] = f(px[i]) } }
        let keepAlive = y.storage // py stays valid without capturing y (no retain cycle)
        y.record(name, [x]) { gy in
            _ = keepAlive
            x.accumulateGrad { gx in
                let pg = gy.data
                Parallel.chunks(x.count, minimumChunk: 32768) { r in
                    for i in r { gx[i] += pg[i] * derivative(px[i], py[i]) }
                }
            }
        }
        return y
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.unary("add_scalar", { $0 + s }, derivative: { _, _ in 1 }) }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.unary("mul_scalar", { $0 * s }, derivative: { _, _ in s }) }
    public static func / (a: Tensor, s: Float) -> Tensor { a * (1 / s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a + s }
    public static func * (s: Float, a: Tensor) -> Tensor { a * s }
    public static prefix func - (a: Tensor) -> Tensor { a * -1 }

    public func exp() -> Tensor {
        let x = self
        let y = Tensor(uninitializedShape: shape)
        Parallel.chunks(count, minimumChunk: 16384) { r in ak_exp(x.data + r.lowerBound, y.data + r.lowerBound, r.count) }
        let saved = y.storage // not y itself: y → its GradFunction → y would be a retain cycle
        y.record("exp", [x]) { gy in
            x.accumulateGrad { gx in for i in 0..<x.count { gx[i] += gy.data[i] * saved.pointer[i] } }
        }
        return y
    }

    public func log() -> Tensor { unary("log", { logf($0) }, derivative: { x, _ in 1 / x }) }
    public func sqrt() -> Tensor { unary("sqrt", { $0.squareRoot() }, derivative: { _, y in 0.5 / y }) }
    public func square() -> Tensor { unary("square", { $0 * $0 }, derivative: { x, _ in 2 * x }) }
    public func abs() -> Tensor { unary("abs", { Swift.abs($0) }, derivative: { x, _ in x > 0 ? 1 : (x < 0 ? -1 : 0) }) }

    public func sigmoid() -> Tensor {
        let x = self
        let y = Tensor(uninitializedShape: shape)
        Parallel.chunks(count, minimumChunk: 16384) { r in ak_sigmoid(x.data + r.lowerBound, y.data + r.lowerBound, r.count) }
        let saved = y.storage // see exp()
        y.record("sigmoid", [x]) { gy in
            let s = saved.pointer
            x.accumulateGrad { gx in for i in 0..<x.count { gx[i] += gy.data[i] * s[i] * (1 - s[i]) } }
        }
        return y
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
