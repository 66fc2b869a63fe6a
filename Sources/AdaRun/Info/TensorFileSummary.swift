// `adaroute info`: a plain-text table of a safetensors file's tensors (name, dtype, shape, element
// count, in file order), then totals and optionally the `__metadata__` map. Formatting only: the
// reader (AdaIO.SafeTensorsFile) does all validation.
import AdaIO

public enum TensorFileSummary {
    /// Opens and validates `path`, then summarises it; throws the reader's SafeTensorsError on a bad file.
    public static func text(path: String, includeMetadata: Bool = false) throws -> String {
        text(of: try SafeTensorsFile(path: path), includeMetadata: includeMetadata)
    }

    /// The summary of an already opened file, ending with a newline.
    public static func text(of file: SafeTensorsFile, includeMetadata: Bool = false) -> String {
        let header = ["name", "dtype", "shape", "elements"]
        let rows = file.entries.map { entry in
            [entry.name, entry.dtype.rawValue, "[" + entry.shape.map(String.init).joined(separator: ", ") + "]",
             String(entry.elementCount)]
        }
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            // Text columns left-aligned, the element count right-aligned; no trailing spaces.
            let padded = cells.indices.map { column -> String in
                let gap = String(repeating: " ", count: widths[column] - cells[column].count)
                return column == cells.count - 1 ? gap + cells[column] : cells[column] + gap
            }
            return padded.joined(separator: "  ")
        }

        var lines = [line(header)]
        lines += rows.map(line)
        let parameters = file.entries.reduce(0) { $0 + $1.elementCount }
        let bytes = file.entries.reduce(0) { $0 + $1.range.count }
        lines.append("")
        lines.append("tensors: \(file.entries.count)  parameters: \(grouped(parameters))  bytes: \(grouped(bytes))")
        if includeMetadata {
            lines.append("")
            if file.metadata.isEmpty {
                lines.append("metadata: (none)")
            } else {
                lines.append("metadata:")
                for key in file.metadata.keys.sorted() {
                    let value = file.metadata[key]!
                    lines.append("  \(key): " + (value.isEmpty ? "\"\"" : value)) // show an empty value explicitly
                }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// 1234567 → "1,234,567".
    static func grouped(_ value: Int) -> String {
        var digits = String(value.magnitude)
        var groups: [Substring] = []
        while digits.count > 3 {
            groups.insert(Substring(digits.suffix(3)), at: 0)
            digits.removeLast(3)
        }
        groups.insert(Substring(digits), at: 0)
        return (value < 0 ? "-" : "") + groups.joined(separator: ",")
    }
}
