// Seeded, deterministic random numbers: xoshiro256** seeded through SplitMix64. One generator per
// purpose (initialisation, data order, augmentation, dropout) keeps runs reproducible.

public struct RandomGenerator: RandomNumberGenerator, Sendable {
    public private(set) var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var s = seed
        func splitmix() -> UInt64 {
            s &+= 0x9E37_79B9_7F4A_7C15
            var z = s
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        state = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// Restores a generator from `stateWords` (checkpoint resume).
    public init(stateWords: [UInt64]) {
        precondition(stateWords.count == 4, "generator state needs 4 words")
        state = (stateWords[0], stateWords[1], stateWords[2], stateWords[3])
    }

    public var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    public mutating func next() -> UInt64 {
        let result = ((state.1 &* 5) << 7 | (state.1 &* 5) >> 57) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = (state.3 << 45) | (state.3 >> 19)
        return result
    }

    /// Uniform in [0, 1) with 24 random bits.
    public mutating func nextFloat() -> Float { Float(next() >> 40) * (1.0 / 16_777_216.0) }

    /// Uniform in [0, 1) with 53 random bits.
    public mutating func nextDouble() -> Double { Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0) }

    public mutating func uniform(_ low: Float, _ high: Float) -> Float { low + (high - low) * nextFloat() }

    /// Standard normal (Box–Muller, one value per call).
    public mutating func normal() -> Float {
        let u1 = max(nextDouble(), 1e-300), u2 = nextDouble()
        return Float((-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2))
    }

    /// Integer in 0..<bound.
    public mutating func int(below bound: Int) -> Int { Int.random(in: 0..<bound, using: &self) }
}

extension Tensor {
    public static func uniform(_ shape: [Int], low: Float, high: Float, using rng: inout RandomGenerator,
                               requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.data[i] = rng.uniform(low, high) }
        t.requiresGrad = requiresGrad
        return t
    }

    public static func normal(_ shape: [Int], mean: Float = 0, std: Float = 1, using rng: inout RandomGenerator,
                              requiresGrad: Bool = false) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count { t.data[i] = mean + std * rng.normal() }
        t.requiresGrad = requiresGrad
        return t
    }

    /// Normal(mean, std²) redrawn until inside [low, high] (timm's trunc_normal_ bounds are absolute:
    /// with std 0.02 and ±2 the cut never triggers in practice).
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, std: Float, low: Float = -2, high: Float = 2,
                                       using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        precondition(low < high, "truncatedNormal: empty interval [\(low), \(high)]")
        let t = Tensor(uninitializedShape: shape)
        for i in 0..<t.count {
            var v: Float
            repeat { v = mean + std * rng.normal() } while v < low || v > high
            t.data[i] = v
        }
        t.requiresGrad = requiresGrad
        return t
    }

    /// PyTorch's kaiming_uniform_(a): U(−b, b), b = gain·√(3 / fanIn), gain = √(2 / (1 + a²)).
    /// With a = √5 (nn.Linear / nn.Conv2d default) b = 1/√fanIn.
    public static func kaimingUniform(_ shape: [Int], fanIn: Int, a: Float = Float(5).squareRoot(),
                                      using rng: inout RandomGenerator, requiresGrad: Bool = false) -> Tensor {
        precondition(fanIn > 0, "kaimingUniform: fanIn must be positive")
        let gain = (2 / (1 + a * a)).squareRoot()
        let bound = gain * (3 / Float(fanIn)).squareRoot()
        return uniform(shape, low: -bound, high: bound, using: &rng, requiresGrad: requiresGrad)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
