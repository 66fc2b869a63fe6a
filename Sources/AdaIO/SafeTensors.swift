// safetensors (Hugging Face's format): u64 little-endian header length, a JSON header mapping each
// tensor name to {dtype, shape, data_offsets: [begin, end]} (offsets into the byte buffer after the
// header) plus an optional "__metadata__" string map, then the raw little-endian data.
//
// The reader memory-maps the file and validates the header completely before any tensor is touched:
// every malformed file gives an error naming the file (and tensor), never an out-of-bounds read. The JSON
// is decoded into a strict HeaderValue so that `true`, `1.5` or `1e30` never pass for an integer.
import AdaTensor
import Foundation

public enum SafeTensorsError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case malformedHeader(file: String, reason: String)
    case badEntry(file: String, tensor: String, reason: String)
    case missingTensor(file: String, tensor: String)
    case wrongType(file: String, tensor: String, expected: String, actual: String)

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read safetensors file: \(reason)"
        case let .malformedHeader(file, reason): return "\(file): malformed safetensors header: \(reason)"
        case let .badEntry(file, tensor, reason): return "\(file): tensor '\(tensor)': \(reason)"
        case let .missingTensor(file, tensor): return "\(file): no tensor named '\(tensor)'"
        case let .wrongType(file, tensor, expected, actual):
            return "\(file): tensor '\(tensor)' has dtype \(actual), expected \(expected)"
        }
    }
}

public enum SafeTensorsDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16", i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u8 = "U8", bool = "BOOL"

    public var byteSize: Int {
        switch self {
        case .f64, .i64: return 8
        case .f32, .i32: return 4
        case .f16, .bf16, .i16: return 2
        case .i8, .u8, .bool: return 1
        }
    }
}

public struct SafeTensorsEntry: Sendable {
    public let name: String
    public let dtype: SafeTensorsDType
    public let shape: [Int]
    /// Byte range inside the data section.
    public let range: Range<Int>
    public var elementCount: Int { shape.reduce(1, *) }
}

/// A validated, memory-mapped safetensors file.
public final class SafeTensorsFile {
    public let path: String
    public let metadata: [String: String]
    /// Entries in file order (by offset).
    public let entries: [SafeTensorsEntry]
    private let byName: [String: SafeTensorsEntry]
    private let data: Data // mapped file
    private let dataStart: Int

    public init(path: String) throws {
        self.path = path
        let file = path
        let mapped: Data
        do {
            mapped = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            var isDirectory: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
            let reason = !exists ? "no such file" : isDirectory.boolValue ? "it is a directory"
                : (error as NSError).localizedDescription
            throw SafeTensorsError.unreadable(file: file, reason: reason)
        }
        guard !mapped.isEmpty else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "file is empty (0 bytes); it must start with an 8-byte header length")
        }
        guard mapped.count >= 8 else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "file is \(mapped.count) bytes, shorter than the 8-byte header length")
        }
        let headerLength = mapped.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard headerLength <= UInt64(mapped.count - 8) else {
            throw SafeTensorsError.malformedHeader(
                file: file, reason: "header length \(headerLength) runs past the end of the \(mapped.count)-byte file")
        }
        let dataStart = 8 + Int(headerLength)
        let headerBytes = mapped.subdata(in: 8..<dataStart)
        let header: HeaderValue
        do {
            header = try JSONDecoder().decode(HeaderValue.self, from: headerBytes)
        } catch {
            throw SafeTensorsError.malformedHeader(
                file: file, reason: "header is not valid JSON (\(Self.describeJSONError(in: headerBytes, decodingError: error)))")
        }
        guard case let .object(object) = header else {
            throw SafeTensorsError.malformedHeader(file: file, reason: "header is not a JSON object but \(header.kind)")
        }
        let dataSize = mapped.count - dataStart
        var metadata: [String: String] = [:]
        var entries: [SafeTensorsEntry] = []
        // Sorted names: with several bad entries, the same one is reported every time.
        for (name, value) in object.sorted(by: { $0.key < $1.key }) {
            if name == "__metadata__" {
                guard case let .object(map) = value else {
                    throw SafeTensorsError.malformedHeader(file: file, reason: "__metadata__ is \(value.kind), not an object of strings")
                }
                for (key, item) in map.sorted(by: { $0.key < $1.key }) {
                    guard case let .string(text) = item else {
                        throw SafeTensorsError.malformedHeader(file: file, reason: "__metadata__['\(key)'] is \(item.kind), not a string")
                    }
                    metadata[key] = text
                }
                continue
            }
            entries.append(try Self.parseEntry(name: name, value: value, file: file))
        }
        // File order; empty tensors sharing an offset are ordered by name so the order is deterministic.
        entries.sort { ($0.range.lowerBound, $0.range.upperBound, $0.name) < ($1.range.lowerBound, $1.range.upperBound, $1.name) }
        // Checked in file order so a truncated file reports the first tensor it cuts into.
        if let firstPastEnd = entries.firstIndex(where: { $0.range.upperBound > dataSize }) {
            let entry = entries[firstPastEnd]
            let others = entries[(firstPastEnd + 1)...].filter { $0.range.upperBound > dataSize }.count
            throw SafeTensorsError.badEntry(
                file: file, tensor: entry.name,
                reason: "data_offsets [\(entry.range.lowerBound), \(entry.range.upperBound)] run past the end of the "
                    + "\(dataSize)-byte data section" + (others > 0 ? " (as do \(others) later tensor\(others == 1 ? "" : "s"))" : "") + "; truncated file?")
        }
        // Sorted by start, non-empty ranges are disjoint iff each starts at or after the furthest end so far
        // (comparing neighbours only would miss a small tensor nested inside a large one). Empty tensors own no bytes.
        var furthest: SafeTensorsEntry?
        for next in entries where !next.range.isEmpty {
            if let previous = furthest, next.range.lowerBound < previous.range.upperBound {
                throw SafeTensorsError.badEntry(
                    file: file, tensor: next.name,
                    reason: "data_offsets [\(next.range.lowerBound), \(next.range.upperBound)] overlap tensor '\(previous.name)' "
                        + "[\(previous.range.lowerBound), \(previous.range.upperBound)]")
            }
            furthest = next
        }
        self.metadata = metadata
        self.entries = entries
        self.byName = Dictionary(uniqueKeysWithValues: entries.map { ($0.name, $0) })
        self.data = mapped
        self.dataStart = dataStart
    }

    private static func parseEntry(name: String, value: HeaderValue, file: String) throws -> SafeTensorsEntry {
        func bad(_ reason: String) -> SafeTensorsError { .badEntry(file: file, tensor: name, reason: reason) }
        guard case let .object(fields) = value else { throw bad("entry is \(value.kind), not an object") }
        guard let dtypeValue = fields["dtype"] else { throw bad("missing dtype") }
        guard case let .string(dtypeText) = dtypeValue else { throw bad("dtype is \(dtypeValue.kind), not a string") }
        guard let dtype = SafeTensorsDType(rawValue: dtypeText) else {
            throw bad("unknown dtype '\(dtypeText)' (expected one of \(SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        guard let shapeValue = fields["shape"] else { throw bad("missing shape") }
        guard let shape = shapeValue.nonNegativeIntegers else {
            throw bad("shape \(shapeValue.json) is not a list of non-negative integers")
        }
        var elements = 1
        for n in shape {
            let (product, overflow) = elements.multipliedReportingOverflow(by: n)
            guard !overflow else { throw bad("shape \(shape) is too large (element count overflows)") }
            elements = product
        }
        guard let offsetsValue = fields["data_offsets"] else { throw bad("missing data_offsets") }
        guard let offsets = offsetsValue.nonNegativeIntegers, offsets.count == 2 else {
            throw bad("data_offsets \(offsetsValue.json) is not a pair of non-negative integers [begin, end]")
        }
        let (begin, end) = (offsets[0], offsets[1])
        guard begin <= end else { throw bad("data_offsets [\(begin), \(end)] end before they begin") }
        let (bytes, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw bad("shape \(shape) × \(dtype.rawValue) is too large (byte count overflows)") }
        guard end - begin == bytes else {
            throw bad("data_offsets span \(end - begin) bytes but shape \(shape) × \(dtype.rawValue) needs \(bytes)")
        }
        return SafeTensorsEntry(name: name, dtype: dtype, shape: shape, range: begin..<end)
    }

    /// Where the JSON is broken: JSONDecoder only says "not valid JSON", JSONSerialization gives the position.
    private static func describeJSONError(in header: Data, decodingError: Error) -> String {
        do {
            _ = try JSONSerialization.jsonObject(with: header, options: .fragmentsAllowed)
        } catch {
            if let detail = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String { return detail }
        }
        if case let DecodingError.dataCorrupted(context) = decodingError { return context.debugDescription }
        return "\(decodingError)"
    }

    public func entry(_ name: String) -> SafeTensorsEntry? { byName[name] }
    public var names: [String] { entries.map(\.name) }

    /// A float tensor (F32, F16, BF16 and F64 are converted to float32).
    public func tensor(_ name: String) throws -> Tensor {
        guard let e = byName[name] else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        let t = Tensor(uninitializedShape: e.shape)
        let n = e.elementCount
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            let base = raw.baseAddress! + dataStart + e.range.lowerBound
            switch e.dtype {
            case .f32: memcpy(t.data, base, n * 4)
            case .f64: for i in 0..<n { t.data[i] = Float(base.loadUnaligned(fromByteOffset: i * 8, as: Double.self)) }
            case .bf16:
                for i in 0..<n {
                    let bits = UInt32(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) << 16
                    t.data[i] = Float(bitPattern: bits)
                }
            case .f16: for i in 0..<n { t.data[i] = halfToFloat(base.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)) }
            default: throw SafeTensorsError.wrongType(file: path, tensor: name, expected: "F32, F16, BF16 or F64", actual: e.dtype.rawValue)
            }
        }
        return t
    }

    /// An integer tensor (I64, I32, I16, I8, U8, BOOL) as Int values.
    public func integers(_ name: String) throws -> (shape: [Int], values: [Int]) {
        guard let e = byName[name] else { throw SafeTensorsError.missingTensor(file: path, tensor: name) }
        let n = e.elementCount
        let values: [Int] = try data.withUnsafeBytes { raw in
            let base = raw.baseAddress! + dataStart + e.range.lowerBound
            switch e.dtype {
            case .i64: return (0..<n).map { Int(base.loadUnaligned(fromByteOffset: $0 * 8, as: Int64.self)) }
            case .i32: return (0..<n).map { Int(base.loadUnaligned(fromByteOffset: $0 * 4, as: Int32.self)) }
            case .i16: return (0..<n).map { Int(base.loadUnaligned(fromByteOffset: $0 * 2, as: Int16.self)) }
            case .i8: return (0..<n).map { Int(base.load(fromByteOffset: $0, as: Int8.self)) }
            case .u8, .bool: return (0..<n).map { Int(base.load(fromByteOffset: $0, as: UInt8.self)) }
            default: throw SafeTensorsError.wrongType(file: path, tensor: name, expected: "an integer dtype", actual: e.dtype.rawValue)
            }
        }
        return (e.shape, values)
    }
}

/// A JSON value decoded strictly, so that validation can tell integers from everything else:
/// JSON `true`, `1.5` and `1e30` are never read as integers (JSONSerialization's NSNumber would).
private indirect enum HeaderValue: Decodable {
    case null, bool(Bool), integer(Int), number(Double), string(String), array([HeaderValue]), object([String: HeaderValue])
    /// Valid JSON that fits no Swift type (a number such as 1e400): kept as a value so the error names the field.
    case outOfRange

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Int.self) { self = .integer(value) } // fails for 1.5, 1e30, 2^64
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([HeaderValue].self) { self = .array(value) }
        else if let value = try? container.decode([String: HeaderValue].self) { self = .object(value) }
        else { self = .outOfRange }
    }

    /// The values of an array made only of non-negative integers; nil for anything else.
    var nonNegativeIntegers: [Int]? {
        guard case let .array(items) = self else { return nil }
        var values: [Int] = []
        for item in items {
            guard case let .integer(n) = item, n >= 0 else { return nil }
            values.append(n)
        }
        return values
    }

    /// "a string", "an array", … for error messages.
    var kind: String {
        switch self {
        case .null: return "null"
        case .bool: return "a boolean"
        case .integer, .number: return "a number"
        case .outOfRange: return "a number out of range"
        case .string: return "a string"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// Compact JSON-like text of the value, for error messages (long values are cut).
    var json: String {
        let text: String
        switch self {
        case .null: text = "null"
        case .outOfRange: text = "<number out of range>"
        case let .bool(b): text = "\(b)"
        case let .integer(n): text = "\(n)"
        case let .number(x): text = "\(x)"
        case let .string(s): text = "\"\(s)\""
        case let .array(items): text = "[" + items.map(\.json).joined(separator: ", ") + "]"
        case let .object(map): text = "{" + map.keys.sorted().map { "\"\($0)\": \(map[$0]!.json)" }.joined(separator: ", ") + "}"
        }
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}

/// IEEE half → float (normals, subnormals, infinities, NaN).
func halfToFloat(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int(h >> 10) & 0x1f
    let mantissa = UInt32(h & 0x3ff)
    if exponent == 0 {
        let value = Float(mantissa) * (1.0 / 16_777_216.0) // 2^-24
        return sign != 0 ? -value : value
    }
    if exponent == 31 { return Float(bitPattern: sign | 0x7f80_0000 | (mantissa << 13)) }
    return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
}

/// Writes F32 tensors (and I64 integer arrays) with an optional `__metadata__` map, atomically.
public struct SafeTensorsWriter {
    private var items: [(name: String, dtype: SafeTensorsDType, shape: [Int], bytes: Data)] = []
    public var metadata: [String: String] = [:]

    public init(metadata: [String: String] = [:]) { self.metadata = metadata }

    public mutating func add(_ name: String, _ tensor: Tensor) {
        items.append((name, .f32, tensor.shape, Data(bytes: tensor.data, count: tensor.count * 4)))
    }

    public mutating func add(_ name: String, integers: [Int], shape: [Int]) {
        precondition(integers.count == shape.reduce(1, *), "\(name): \(integers.count) values for shape \(shape)")
        var bytes = Data(capacity: integers.count * 8)
        for v in integers { withUnsafeBytes(of: Int64(v).littleEndian) { bytes.append(contentsOf: $0) } }
        items.append((name, .i64, shape, bytes))
    }

    public func serialized() throws -> Data {
        var header: [String: Any] = [:]
        var offset = 0
        for item in items {
            precondition(header[item.name] == nil, "duplicate tensor name \(item.name)")
            header[item.name] = ["dtype": item.dtype.rawValue, "shape": item.shape, "data_offsets": [offset, offset + item.bytes.count]]
            offset += item.bytes.count
        }
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) } // pad with spaces so the data section is 8-byte aligned
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for item in items { out.append(item.bytes) }
        return out
    }

    public func write(to path: String) throws {
        try AtomicFile.write(serialized(), to: URL(fileURLWithPath: path))
    }
}
