// The safetensors reader on malformed files (every case a clear SafeTensorsError naming the file and
// the tensor, never a crash), dtype conversions from hand-built bytes, the writer round trip, empty and
// scalar tensors, and the real parity fixture.
//
// Files are built byte by byte here: u64 little-endian header length, JSON header, data section.
import AdaIO
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// Writes `bytes` to a fresh temporary directory and returns the path.
private func writeBytes(_ bytes: [UInt8], name: String = "case.safetensors") throws -> String {
    let path = Fixtures.temporaryDirectory().appendingPathComponent(name).path
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

/// A safetensors file with `header` as its JSON text (length taken from the text) and `data` after it.
private func writeFile(header: String, data: [UInt8] = [], headerLength: UInt64? = nil,
                       name: String = "case.safetensors") throws -> String {
    let json = Array(header.utf8)
    var bytes: [UInt8] = []
    withUnsafeBytes(of: (headerLength ?? UInt64(json.count)).littleEndian) { bytes.append(contentsOf: $0) }
    return try writeBytes(bytes + json + data, name: name)
}

/// Little-endian bytes of a list of fixed-width values.
private func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> [UInt8] {
    var bytes: [UInt8] = []
    for v in values { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    return bytes
}

/// Opens `path`, expects a SafeTensorsError, and checks its description names the file, the tensor
/// (quoted, when given) and every phrase in `mentions`.
private func expectRejected(_ path: String, tensor: String? = nil, mentions: [String] = [],
                            sourceLocation: SourceLocation = #_sourceLocation) {
    let error = #expect(throws: SafeTensorsError.self, sourceLocation: sourceLocation) {
        _ = try SafeTensorsFile(path: path)
    }
    guard let error else { return }
    let text = error.description
    #expect(text.contains(path), "error does not name the file: \(text)", sourceLocation: sourceLocation)
    if let tensor {
        #expect(text.contains("'\(tensor)'"), "error does not name tensor \(tensor): \(text)", sourceLocation: sourceLocation)
    }
    for phrase in mentions {
        #expect(text.contains(phrase), "error does not mention '\(phrase)': \(text)", sourceLocation: sourceLocation)
    }
}

/// One-tensor header text: `"name": {entry}`.
private func header(_ name: String, dtype: String = "\"F32\"", shape: String = "[2]", offsets: String = "[0, 8]") -> String {
    "{\"\(name)\": {\"dtype\": \(dtype), \"shape\": \(shape), \"data_offsets\": \(offsets)}}"
}

@Suite("safetensors validation")
struct SafeTensorsValidationTests {
    // MARK: - Malformed files

    @Test func zeroByteFile() throws {
        expectRejected(try writeBytes([]), mentions: ["empty"])
    }

    @Test func fileShorterThanEightBytes() throws {
        expectRejected(try writeBytes([1, 0, 0, 0, 0]), mentions: ["5 bytes"])
    }

    @Test func missingFile() throws {
        let path = Fixtures.temporaryDirectory().appendingPathComponent("absent.safetensors").path
        expectRejected(path, mentions: ["cannot read", "no such file"])
        expectRejected(Fixtures.temporaryDirectory().path, mentions: ["directory"])
    }

    @Test func headerLengthPastEndOfFile() throws {
        expectRejected(try writeFile(header: header("w"), data: Array(repeating: 0, count: 8), headerLength: 1000),
                       mentions: ["header length 1000", "past the end"])
        // A length that would overflow any offset arithmetic.
        expectRejected(try writeFile(header: "{}", headerLength: UInt64.max), mentions: ["past the end"])
        // Exactly one byte too long.
        let text = header("w")
        expectRejected(try writeFile(header: text, headerLength: UInt64(text.utf8.count + 1)), mentions: ["past the end"])
    }

    @Test func badJSON() throws {
        expectRejected(try writeFile(header: "{\"w\": {\"dtype\": "), mentions: ["not valid JSON"])
        expectRejected(try writeFile(header: ""), mentions: ["not valid JSON"])
        expectRejected(try writeFile(header: "{\"a\": 1} trailing"), mentions: ["not valid JSON"])
    }

    @Test func headerNotAnObject() throws {
        for text in ["[1, 2]", "\"text\"", "42", "null"] {
            expectRejected(try writeFile(header: text), mentions: ["not a JSON object"])
        }
    }

    @Test func entryNotAnObject() throws {
        expectRejected(try writeFile(header: "{\"w\": 5}"), tensor: "w", mentions: ["not an object"])
    }

    @Test func unknownOrMissingDtype() throws {
        let data = [UInt8](repeating: 0, count: 8)
        expectRejected(try writeFile(header: header("w.weight", dtype: "\"F128\""), data: data),
                       tensor: "w.weight", mentions: ["unknown dtype 'F128'"])
        expectRejected(try writeFile(header: header("w.weight", dtype: "\"f32\""), data: data),
                       tensor: "w.weight", mentions: ["unknown dtype"])
        expectRejected(try writeFile(header: header("w.weight", dtype: "4"), data: data), tensor: "w.weight", mentions: ["dtype"])
        expectRejected(try writeFile(header: "{\"w.weight\": {\"shape\": [2], \"data_offsets\": [0, 8]}}", data: data),
                       tensor: "w.weight", mentions: ["dtype"])
    }

    @Test func shapeNotAListOfNonNegativeIntegers() throws {
        let data = [UInt8](repeating: 0, count: 8)
        for shape in ["[-1]", "[1.5, 2]", "[\"2\"]", "[true]", "[null]", "2", "{}", "\"[2]\"", "[1e30]",
                      "[18446744073709551615]", "[[2]]", "[1e400]"] {
            expectRejected(try writeFile(header: header("blocks.0.w", shape: shape), data: data),
                           tensor: "blocks.0.w", mentions: ["shape", "not a list of non-negative integers"])
        }
        expectRejected(try writeFile(header: "{\"b\": {\"dtype\": \"F32\", \"data_offsets\": [0, 8]}}", data: data),
                       tensor: "b", mentions: ["shape"])
        // Element count that overflows Int: an error, not a trap.
        expectRejected(try writeFile(header: header("huge", shape: "[4611686018427387904, 4]"), data: data),
                       tensor: "huge", mentions: ["too large"])
        expectRejected(try writeFile(header: header("huge", shape: "[2305843009213693952]"), data: data),
                       tensor: "huge", mentions: ["shape"])
    }

    @Test func dataOffsetsOutOfRangeOrMalformed() throws {
        let data = [UInt8](repeating: 0, count: 8)
        // Past the end of the data section (e.g. a truncated file).
        expectRejected(try writeFile(header: header("w", shape: "[4]", offsets: "[0, 16]"), data: data),
                       tensor: "w", mentions: ["data_offsets", "8-byte data section"])
        expectRejected(try writeFile(header: header("w", offsets: "[-4, 4]"), data: data), tensor: "w", mentions: ["data_offsets"])
        expectRejected(try writeFile(header: header("w", offsets: "[8, 0]"), data: data), tensor: "w", mentions: ["data_offsets"])
        for offsets in ["[0]", "[0, 8, 16]", "[0.5, 8.5]", "[\"0\", \"8\"]", "[true, 8]", "\"0-8\"", "[0, 1e30]",
                        "[0, 18446744073709551615]"] {
            expectRejected(try writeFile(header: header("w", offsets: offsets), data: data),
                           tensor: "w", mentions: ["data_offsets", "not a pair of non-negative integers"])
        }
        expectRejected(try writeFile(header: "{\"w\": {\"dtype\": \"F32\", \"shape\": [2]}}", data: data),
                       tensor: "w", mentions: ["data_offsets"])
    }

    @Test func truncatedFileNamesTheFirstTensorCut() throws {
        // Three 8-byte tensors in file order c, a, b (names deliberately not in offset order); the data
        // section stops inside a, so a is named (not b, whatever the header's key order).
        let header = "{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [16, 24]},"
            + " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]},"
            + " \"c\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}"
        let path = try writeFile(header: header, data: [UInt8](repeating: 0, count: 12))
        expectRejected(path, tensor: "a", mentions: ["[8, 16]", "12-byte data section", "1 later tensor", "truncated"])
    }

    @Test func overlappingOffsets() throws {
        let data = [UInt8](repeating: 0, count: 16)
        let partial = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
            + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}"
        expectRejected(try writeFile(header: partial, data: data), tensor: "b", mentions: ["overlap", "'a'"])
        let identical = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
            + " \"b\": {\"dtype\": \"I64\", \"shape\": [1], \"data_offsets\": [0, 8]}}"
        expectRejected(try writeFile(header: identical, data: data), mentions: ["overlap", "'a'", "'b'"])
        // c lies inside a but does not overlap its neighbour b: only a running maximum catches it.
        let nested = "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
            + " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]},"
            + " \"c\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 12]}}"
        expectRejected(try writeFile(header: nested, data: data), mentions: ["overlap", "'a'"])
    }

    @Test func adjacentAndEmptyTensorsDoNotOverlap() throws {
        let header = "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
            + " \"e1\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 8]},"
            + " \"e0\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [8, 8]},"
            + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [8, 16]}}"
        let file = try SafeTensorsFile(path: try writeFile(header: header, data: [UInt8](repeating: 0, count: 16)))
        // File (offset) order; empty tensors at the same offset by name.
        #expect(file.names == ["a", "e0", "e1", "b"])
    }

    @Test func spanNotEqualToShapeTimesDtypeSize() throws {
        let data = [UInt8](repeating: 0, count: 16)
        expectRejected(try writeFile(header: header("proj.weight", shape: "[2, 2]", offsets: "[0, 12]"), data: data),
                       tensor: "proj.weight", mentions: ["12 bytes", "16"])
        expectRejected(try writeFile(header: header("proj.bias", dtype: "\"F16\"", shape: "[2]", offsets: "[0, 8]"), data: data),
                       tensor: "proj.bias", mentions: ["8 bytes", "4"])
        expectRejected(try writeFile(header: header("empty", shape: "[0]", offsets: "[0, 4]"), data: data),
                       tensor: "empty", mentions: ["4 bytes"])
    }

    @Test func metadataNotAStringMap() throws {
        let tensor = "\"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}"
        let data = [UInt8](repeating: 0, count: 8)
        for (metadata, phrase) in [("\"pt\"", "__metadata__"), ("[\"a\"]", "__metadata__"), ("null", "__metadata__"),
                                   ("{\"epochs\": 3}", "epochs"), ("{\"ok\": \"x\", \"nested\": {\"a\": \"b\"}}", "nested"),
                                   ("{\"flag\": null}", "flag"), ("{\"flag\": true}", "flag"), ("{\"big\": 1e400}", "big")] {
            expectRejected(try writeFile(header: "{\"__metadata__\": \(metadata), \(tensor)}", data: data),
                           mentions: ["__metadata__", phrase])
        }
    }

    @Test func wrongAccessorAndMissingTensorNameTheTensor() throws {
        var writer = SafeTensorsWriter()
        writer.add("weights", Tensor([1, 2]))
        writer.add("labels", integers: [1, 2], shape: [2])
        let path = Fixtures.temporaryDirectory().appendingPathComponent("m.safetensors").path
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        for (name, body) in [("labels", { _ = try file.tensor("labels") }), ("weights", { _ = try file.integers("weights") }),
                             ("absent", { _ = try file.tensor("absent") }), ("absent", { _ = try file.integers("absent") })]
            as [(String, () throws -> Void)] {
            let error = #expect(throws: SafeTensorsError.self) { try body() }
            #expect(error?.description.contains(path) == true && error?.description.contains("'\(name)'") == true,
                    "\(String(describing: error))")
        }
    }

    // MARK: - Conversions

    @Test func float16ToFloat32() throws {
        let halves: [UInt16] = [0x3C00, 0xC100, 0x7BFF, 0x0001, 0x03FF, 0x8001, 0x0400, 0x7C00, 0xFC00, 0x8000, 0x7E00]
        let path = try writeFile(header: header("h", dtype: "\"F16\"", shape: "[11]", offsets: "[0, 22]"),
                                 data: littleEndianBytes(halves))
        let v = try SafeTensorsFile(path: path).tensor("h").values
        let expected: [Float] = [1.0, -2.5, 65504, 0x1p-24, 1023 * 0x1p-24, -0x1p-24, 0x1p-14, .infinity, -.infinity, -0.0]
        for (i, e) in expected.enumerated() {
            #expect(v[i].bitPattern == e.bitPattern, "half 0x\(String(halves[i], radix: 16)) → \(v[i]), expected \(e)")
        }
        #expect(v[10].isNaN)
    }

    @Test func bfloat16ToFloat32() throws {
        // bfloat16 keeps 8 significant bits, so 65504 is not representable: 0x477F is 65280, 0x4780 65536.
        let halves: [UInt16] = [0x3F80, 0xC020, 0x477F, 0x4780, 0x0001, 0x807F, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0]
        let path = try writeFile(header: header("b", dtype: "\"BF16\"", shape: "[2, 5]", offsets: "[0, 20]"),
                                 data: littleEndianBytes(halves))
        let t = try SafeTensorsFile(path: path).tensor("b")
        #expect(t.shape == [2, 5])
        let v = t.values
        let expected: [Float] = [1.0, -2.5, 65280, 65536, Float(bitPattern: 0x0001_0000), Float(bitPattern: 0x807F_0000),
                                 Float(bitPattern: 0x7F7F_0000), .infinity, -.infinity]
        #expect(expected[4] > 0 && expected[4] < Float.leastNormalMagnitude) // really a subnormal
        for (i, e) in expected.enumerated() {
            #expect(v[i].bitPattern == e.bitPattern, "bf16 0x\(String(halves[i], radix: 16)) → \(v[i]), expected \(e)")
        }
        #expect(v[9].isNaN)
    }

    @Test func float64ToFloat32() throws {
        let doubles: [Double] = [1.0, -2.5, 0.1, 65504, 1e-40, 1e300]
        let path = try writeFile(header: header("d", dtype: "\"F64\"", shape: "[6]", offsets: "[0, 48]"),
                                 data: littleEndianBytes(doubles.map(\.bitPattern)))
        let v = try SafeTensorsFile(path: path).tensor("d").values
        #expect(Array(v[0..<4]) == [1.0, -2.5, 0.1, 65504])
        #expect(v[4] > 0 && v[4] < Float.leastNormalMagnitude && abs(Double(v[4]) - 1e-40) < 1e-45) // float subnormal
        #expect(v[5] == .infinity) // out of float range
    }

    @Test func integerDtypes() throws {
        let int32s: [Int32] = [-7, 0, .max, .min]
        let int64s: [Int64] = [-1, 1 << 40, .max]
        let header = "{\"i32\": {\"dtype\": \"I32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},"
            + " \"i64\": {\"dtype\": \"I64\", \"shape\": [3], \"data_offsets\": [16, 40]}}"
        let file = try SafeTensorsFile(path: try writeFile(header: header, data: littleEndianBytes(int32s) + littleEndianBytes(int64s)))
        let a = try file.integers("i32"), b = try file.integers("i64")
        #expect(a.shape == [2, 2] && a.values == [-7, 0, Int(Int32.max), Int(Int32.min)])
        #expect(b.shape == [3] && b.values == [-1, 1 << 40, Int.max])
        #expect(file.entry("i64")?.dtype == .i64 && file.entry("i32")?.dtype == .i32)
    }

    // MARK: - Writer, empty and scalar tensors

    @Test func writerRoundTrip() throws {
        let metadata = ["format": "pt", "note": "quote \" slash / ünïcode", "": "empty key"]
        var writer = SafeTensorsWriter(metadata: metadata)
        // Insertion order differs from name order: the file keeps insertion (offset) order.
        writer.add("z.weight", Tensor(shape: [2, 3], values: [1, -2, 3.5, 4, 5, 6]))
        writer.add("a.bias", Tensor(shape: [3], values: [0.25, -0.5, 1e-30]))
        writer.add("m.index", integers: [3, -1, 4], shape: [1, 3])
        let path = Fixtures.temporaryDirectory().appendingPathComponent("round.safetensors").path
        try writer.write(to: path)

        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerLength = bytes[0..<8].reversed().reduce(0) { $0 << 8 | Int($1) }
        #expect(headerLength % 8 == 0, "data section starts at \(8 + headerLength), not 8-byte aligned")
        #expect(bytes.count == 8 + headerLength + (6 + 3) * 4 + 3 * 8)

        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["z.weight", "a.bias", "m.index"])
        #expect(file.entries.map(\.shape) == [[2, 3], [3], [1, 3]])
        #expect(file.entries.map(\.dtype) == [.f32, .f32, .i64])
        #expect(file.metadata == metadata)
        #expect(try file.tensor("z.weight").values == [1, -2, 3.5, 4, 5, 6])
        #expect(try file.tensor("a.bias").values == [0.25, -0.5, 1e-30])
        #expect(try file.integers("m.index").values == [3, -1, 4])
    }

    @Test func emptyAndScalarTensors() throws {
        var writer = SafeTensorsWriter()
        writer.add("before", Tensor([7]))
        writer.add("empty", Tensor(uninitializedShape: [0]))
        writer.add("empty2d", Tensor(uninitializedShape: [3, 0]))
        writer.add("scalar", Tensor(shape: [], values: [3.5]))
        writer.add("no.labels", integers: [], shape: [0])
        let path = Fixtures.temporaryDirectory().appendingPathComponent("edge.safetensors").path
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(Set(file.names) == ["before", "empty", "empty2d", "scalar", "no.labels"])
        let empty = try file.tensor("empty")
        #expect(empty.shape == [0] && empty.count == 0)
        #expect(try file.tensor("empty2d").shape == [3, 0])
        #expect(file.entry("empty")?.elementCount == 0 && file.entry("empty")?.range.count == 0)
        let scalar = try file.tensor("scalar")
        #expect(scalar.shape == [] && scalar.values == [3.5])
        #expect(file.entry("scalar")?.elementCount == 1 && file.entry("scalar")?.range.count == 4)
        #expect(try file.integers("no.labels").values == [])
        #expect(try file.tensor("before").values == [7])

        // Hand-built: only an empty tensor and a scalar, the empty one at the very end of the data.
        let header = "{\"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [0, 4]},"
            + " \"e\": {\"dtype\": \"I64\", \"shape\": [0], \"data_offsets\": [4, 4]}}"
        let hand = try SafeTensorsFile(path: try writeFile(header: header, data: littleEndianBytes([Float(-1.5).bitPattern])))
        #expect(hand.names == ["s", "e"])
        #expect(try hand.tensor("s").values == [-1.5])
        #expect(try hand.integers("e").values == [])
    }

    // MARK: - The real fixture

    @Test func parityFixtureListsEveryTensor() throws {
        let relative = "adaroute_parity/adaroute_token.safetensors"
        let file = try Fixtures.open(relative)
        // Parse the header independently of the reader.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(relative)))
        let headerLength = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
        var header = try #require(try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        let metadata = header.removeValue(forKey: "__metadata__") as? [String: String]
        #expect(file.metadata == (metadata ?? [:]))
        #expect(!file.entries.isEmpty)
        #expect(Set(file.names) == Set(header.keys), "reader lists \(file.names.count) tensors, header has \(header.count)")
        for entry in file.entries {
            let fields = try #require(header[entry.name] as? [String: Any], "\(entry.name) not in header")
            #expect(entry.shape == (fields["shape"] as? [Int]), "\(entry.name)")
            #expect(entry.dtype.rawValue == (fields["dtype"] as? String), "\(entry.name)")
            #expect([entry.range.lowerBound, entry.range.upperBound] == (fields["data_offsets"] as? [Int]), "\(entry.name)")
        }
        // File order: increasing offsets, and every tensor readable with the header's element count.
        #expect(zip(file.entries, file.entries.dropFirst()).allSatisfy { $0.range.upperBound <= $1.range.lowerBound })
        for entry in file.entries {
            switch entry.dtype {
            case .f32, .f16, .bf16, .f64: #expect(try file.tensor(entry.name).count == entry.elementCount)
            default: #expect(try file.integers(entry.name).values.count == entry.elementCount)
            }
        }
    }
}
