// Recoverable errors from ops whose inputs come from outside the program (data files, labels),
// as opposed to programming mistakes, which stop at a `precondition`.

public enum TensorError: Error, CustomStringConvertible {
    /// Sizes that do not fit together; the text names the op and both shapes.
    case shapeMismatch(String)
    /// A class label outside 0..<classes that is not the ignore index; `pixel` is its flat index
    /// in the labels array (image-major, then row-major over the spatial axes).
    case labelOutOfRange(value: Int32, classes: Int, pixel: Int)

    public var description: String {
        switch self {
        case .shapeMismatch(let message):
            return "shape mismatch: \(message)"
        case .labelOutOfRange(let value, let classes, let pixel):
            return "label \(value) at pixel \(pixel) is outside the class range 0..<\(classes) "
                + "and is not the ignore index (check the dataset's label mapping and class count)"
        }
    }
}
