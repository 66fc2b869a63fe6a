// Loading and saving a module tree by name. Loading copies values into the existing tensors (so the
// model's structure decides the shapes) and reports what the file lacked or had in excess; a shape
// mismatch is an error naming the tensor.
import AdaIO
import AdaTensor

public struct LoadReport: CustomStringConvertible {
    /// Names the model has but the source lacked (they keep their current values).
    public var missing: [String] = []
    /// Names the source had that the model does not use.
    public var unexpected: [String] = []
    public var loaded: [String] = []
    /// Remarks such as "pos_embed resampled …".
    public var notes: [String] = []
    public var description: String {
        "loaded \(loaded.count) tensors; missing \(missing.count)\(missing.isEmpty ? "" : ": " + missing.prefix(8).joined(separator: ", ") + (missing.count > 8 ? ", …" : "")); unexpected \(unexpected.count)\(unexpected.isEmpty ? "" : ": " + unexpected.prefix(8).joined(separator: ", ") + (unexpected.count > 8 ? ", …" : ""))"
    }
}

public enum StateDictError: Error, CustomStringConvertible {
    case shapeMismatch(source: String, tensor: String, expected: [Int], actual: [Int])

    public var description: String {
        switch self {
        case let .shapeMismatch(source, tensor, expected, actual):
            return "\(source): tensor '\(tensor)' has shape \(actual) but the model expects \(expected)"
        }
    }
}

extension Module {
    /// Parameters and buffers by full name.
    public func stateDict() -> [(String, Tensor)] { namedParameters() + namedBuffers() }

    /// Copies every tensor whose (renamed) name matches one of the model's parameters or buffers.
    /// - rename: maps a source name to a model name (return nil to skip the tensor).
    public func load(_ source: SafeTensorsFile, rename: (String) -> String? = { $0 }) throws -> LoadReport {
        var byName: [String: Tensor] = [:]
        for (name, tensor) in stateDict() { byName[name] = tensor }
        var report = LoadReport()
        var seen = Set<String>()
        for entry in source.entries {
            guard let target = rename(entry.name), let tensor = byName[target] else {
                report.unexpected.append(entry.name)
                continue
            }
            // PyTorch stores counters such as num_batches_tracked as 0-d scalars; ours are [1].
            let scalarForOne = entry.shape.isEmpty && tensor.shape == [1]
            guard entry.shape == tensor.shape || scalarForOne else {
                throw StateDictError.shapeMismatch(source: source.path, tensor: entry.name, expected: tensor.shape, actual: entry.shape)
            }
            let value: Tensor
            if [.i64, .i32, .i16, .i8, .u8].contains(entry.dtype) { // integer buffers (indices) are kept as floats
                let ints = try source.integers(entry.name).values
                value = Tensor(shape: tensor.shape, values: ints.map { Float($0) })
            } else {
                value = try source.tensor(entry.name)
            }
            tensor.data.update(from: value.data, count: tensor.count)
            report.loaded.append(target)
            seen.insert(target)
        }
        report.missing = stateDict().map(\.0).filter { !seen.contains($0) }
        return report
    }

    /// Writes the given tensors (default: every parameter and buffer) as float32 safetensors.
    public func save(to path: String, tensors: [(String, Tensor)]? = nil, metadata: [String: String] = [:]) throws {
        var writer = SafeTensorsWriter(metadata: metadata)
        for (name, tensor) in tensors ?? stateDict() { writer.add(name, tensor) }
        try writer.write(to: path)
    }
}
