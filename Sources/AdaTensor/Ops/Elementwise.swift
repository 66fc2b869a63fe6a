// Elementwise arithmetic with broadcasting (+, −, ×, ÷), scalar forms, and unary math.
import CKernels

/// A binary float function known at compile time. Ops are types rather than closures because a closure
/// captured by a parallel loop's body is called, not inlined, once per element (measured: the `+`
/// closure alone took 5 % of a ViT-Ti inference step); a generic over the type is specialised and inlined.
protocol BinaryFunction { static func apply(_ a: Float, _ b: Float) -> Float }
/// The gradient of a binary op with respect to one operand: f(upstream gradient, a, b).
protocol BinaryGradient { static func apply(_ g: Float, _ a: Float, _ b: Float) -> Float }

enum Add: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a + b } }
enum Subtract: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a - b } }
enum Multiply: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a * b } }
enum Divide: BinaryFunction { @inline(__always) static func apply(_ a: Float, _ b: Float) -> Float { a / b } }
enum MultiplyGradA: BinaryGradient { @inline(__always) static func apply(_ g: Float, _ a: Float, _ b: Float) -> Float { g * b } }
enum MultiplyGradB: BinaryGradient { @inline(__always) static func apply(_ g: Float, _ a: Float, _ b: Float) -> Float { g * a } }
enum DivideGradA: BinaryGradient { @inline(__always) static func apply(_ g: Float, _ a: Float, _ b: Float) -> Float { g / b } }
enum DivideGradB: BinaryGradient {
    @inline(__always) static func apply(_ g: Float, _ a: Float, _ b: Float) -> Float { -g * a / (b * b) }
}

/// A unary float function and its derivative as a function of (x, y = f(x)); a type for the same reason.
protocol UnaryFunction { func apply(_ x: Float) -> Float; func derivative(_ x: Float, _ y: Float) -> Float }

struct AddScalar: UnaryFunction {
    let s: Float
    @inline(__always) func apply(_ x: Float) -> Float { x + s }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 1 }
}
struct MultiplyScalar: UnaryFunction {
    let s: Float
    @inline(__always) func apply(_ x: Float) -> Float { x * s }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { s }
}
struct Log: UnaryFunction {
    @inline(__always) func apply(_ x: Float) -> Float { logf(x) }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 1 / x }
}
struct SquareRoot: UnaryFunction {
    @inline(__always) func apply(_ x: Float) -> Float { x.squareRoot() }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 0.5 / y }
}
struct Square: UnaryFunction {
    @inline(__always) func apply(_ x: Float) -> Float { x * x }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { 2 * x }
}
struct Absolute: UnaryFunction {
    @inline(__always) func apply(_ x: Float) -> Float { Swift.abs(x) }
    @inline(__always) func derivative(_ x: Float, _ y: Float) -> Float { x > 0 ? 1 : (x < 0 ? -1 : 0) }
}

extension Tensor {
    /// out = F(a, b) with broadcasting.
    static func broadcastMap<F: BinaryFunction>(_ a: Tensor, _ b: Tensor, _ name: String, _: F.Type) -> (Tensor, [Int]) {
        guard let shape = Broadcast.shape(a.shape, b.shape) else {
            preconditionFailure("\(name): shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let y = Tensor(uninitializedShape: shape)
        let pa = a.data, pb = b.data, py = y.data
        if a.shape == b.shape {
            Parallel.chunks(y.count, minimumChunk: 32768) { r in for i in r { py[i] = F.apply(pa[i], pb[i]) } }
        } else {
            let sa = Broadcast.strides(of: a.shape, in: shape), sb = Broadcast.strides(of: b.shape, in: shape)
            Broadcast.forEachRow(shape, sa, sb) { o, oa, ob, n, stepA, stepB in
                // Unit and zero steps get their own loops so the compiler vectorises them.
                let x = pa + oa, z = pb + ob, out = py + o
                switch (stepA, stepB) {
                case (1, 1): for j in 0..<n { out[j] = F.apply(x[j], z[j]) }
                case (1, 0): let c = z[0]; for j in 0..<n { out[j] = F.apply(x[j], c) }
                case (0, 1): let c = x[0]; for j in 0..<n { out[j] = F.apply(c, z[j]) }
                default: for j in 0..<n { out[j] = F.apply(x[j * stepA], z[j * stepB]) }
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

    /// This operand's gradient G(gy, a, b), computed elementwise in the output shape (straight into the
    /// gradient when the operand has the output's shape, else into a temporary that is then reduced).
    func accumulateBroadcastGrad<G: BinaryGradient>(_: G.Type, a: Tensor, b: Tensor, gy: Tensor, outputShape: [Int]) {
        guard needsGrad else { return }
        let sa = Broadcast.strides(of: a.shape, in: outputShape), sb = Broadcast.strides(of: b.shape, in: outputShape)
        let pa = a.data, pb = b.data, pg = gy.data
        /// out[j] (+)= G(g, a, b) over one row; unit and zero steps vectorise.
        @inline(__always) func row(_ out: UnsafeMutablePointer<Float>, _ o: Int, _ oa: Int, _ ob: Int, _ n: Int,
                                   _ stepA: Int, _ stepB: Int, accumulate: Bool) {
            let g = pg + o, x = pa + oa, z = pb + ob
            switch (stepA, stepB, accumulate) {
            case (1, 1, true): for j in 0..<n { out[j] += G.apply(g[j], x[j], z[j]) }
            case (1, 0, true): let c = z[0]; for j in 0..<n { out[j] += G.apply(g[j], x[j], c) }
            case (0, 1, true): let c = x[0]; for j in 0..<n { out[j] += G.apply(g[j], c, z[j]) }
            case (1, 1, false): for j in 0..<n { out[j] = G.apply(g[j], x[j], z[j]) }
            case (1, 0, false): let c = z[0]; for j in 0..<n { out[j] = G.apply(g[j], x[j], c) }
            case (0, 1, false): let c = x[0]; for j in 0..<n { out[j] = G.apply(g[j], c, z[j]) }
            case (_, _, true): for j in 0..<n { out[j] += G.apply(g[j], x[j * stepA], z[j * stepB]) }
            case (_, _, false): for j in 0..<n { out[j] = G.apply(g[j], x[j * stepA], z[j * stepB]) }
            }
        }
        if shape == outputShape {
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
        let (y, shape) = broadcastMap(a, b, "add", Add.self)
        y.record("add", [a, b]) { gy in
            // The output gradient is passed on by reference to one input when it can be (residual adds).
            let taken = a.takeGrad(gy)
            if !taken { a.accumulateBroadcastGrad(gy.data, outputShape: shape) }
            if taken || !b.takeGrad(gy) { b.accumulateBroadcastGrad(gy.data, outputShape: shape) }
        }
        return y
    }

    public static func - (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "sub", Subtract.self)
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
        let (y, shape) = broadcastMap(a, b, "mul", Multiply.self)
        y.record("mul", [a, b]) { gy in
            a.accumulateBroadcastGrad(MultiplyGradA.self, a: a, b: b, gy: gy, outputShape: shape)
            b.accumulateBroadcastGrad(MultiplyGradB.self, a: a, b: b, gy: gy, outputShape: shape)
        }
        return y
    }

    public static func / (a: Tensor, b: Tensor) -> Tensor {
        let (y, shape) = broadcastMap(a, b, "div", Divide.self)
        y.record("div", [a, b]) { gy in
            a.accumulateBroadcastGrad(DivideGradA.self, a: a, b: b, gy: gy, outputShape: shape)
            b.accumulateBroadcastGrad(DivideGradB.self, a: a, b: b, gy: gy, outputShape: shape)
        }
        return y
    }

    /// y = F(x) elementwise, with dy/dx from F.derivative(x, y).
    func unary<F: UnaryFunction>(_ name: String, _ f: F) -> Tensor {
        let x = self
        let y = Tensor(uninitializedShape: shape)
        let px = x.data, py = y.data
        Parallel.chunks(count, minimumChunk: 32768) { r in for i in r { py[i] = f.apply(px[i]) } }
        let keepAlive = y.storage // py stays valid without capturing y (no retain cycle)
        y.record(name, [x]) { gy in
            _ = keepAlive
            x.accumulateGrad { gx in
                let pg = gy.data
                Parallel.chunks(x.count, minimumChunk: 32768) { r in
                    for i in r { gx[i] += pg[i] * f.derivative(px[i], py[i]) }
                }
            }
        }
        return y
    }

    public static func + (a: Tensor, s: Float) -> Tensor { a.unary("add_scalar", AddScalar(s: s)) }
    public static func - (a: Tensor, s: Float) -> Tensor { a + (-s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.unary("mul_scalar", MultiplyScalar(s: s)) }
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

    public func log() -> Tensor { unary("log", Log()) }
    public func sqrt() -> Tensor { unary("sqrt", SquareRoot()) }
    public func square() -> Tensor { unary("square", Square()) }
    public func abs() -> Tensor { unary("abs", Absolute()) }

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
