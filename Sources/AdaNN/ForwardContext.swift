// What a forward pass needs besides its input: per-sample task ids (multi-dataset routing) and the
// random stream for dropout / drop-path, so a training step is reproducible from its seed.
import AdaTensor

public final class ForwardContext {
    /// Dataset (task) index of every sample in the batch; empty when there is a single task.
    public var taskIds: [Int]
    /// Source of dropout and drop-path masks (training only).
    public var generator: RandomGenerator

    /// Optional tap on named intermediate activations (parity tests, debugging); nil costs nothing.
    public var probe: ((String, Tensor) -> Void)?

    public init(taskIds: [Int] = [], generator: RandomGenerator = RandomGenerator(seed: 0)) {
        self.taskIds = taskIds
        self.generator = generator
    }

    @inline(__always)
    public func record(_ name: @autoclosure () -> String, _ tensor: Tensor) {
        probe?(name(), tensor)
    }
}
