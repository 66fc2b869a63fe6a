// Encodes a config struct back into a ConfigValue tree with snake_case keys in declaration order (so the
// resolved config.yaml reads like the documentation); nil optionals are written as null so every key shows.

final class EncodedBox {
    var value: ConfigValue = .null
}

struct ConfigEncoder: Encoder {
    let box: EncodedBox
    var codingPath: [CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    static func encode<T: Encodable>(_ value: T) throws -> ConfigValue {
        let box = EncodedBox()
        try value.encode(to: ConfigEncoder(box: box))
        return box.value
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        if case .map = box.value {} else { box.value = .map(ConfigMap()) }
        return KeyedEncodingContainer(KeyedWriter<Key>(box: box))
    }
    func unkeyedContainer() -> UnkeyedEncodingContainer {
        box.value = .list([])
        return ListWriter(box: box)
    }
    func singleValueContainer() -> SingleValueEncodingContainer { ScalarWriter(box: box) }
}

func encodeScalar<T: Encodable>(_ value: T) throws -> ConfigValue {
    switch value {
    case let v as Bool: return .bool(v)
    case let v as Int: return .int(v)
    case let v as Int32: return .int(Int(v))
    case let v as UInt64: return .int(Int(v))
    case let v as Double: return .double(v)
    case let v as Float: return .double(Double("\(v)") ?? Double(v)) // 1e-3 stays 0.001, not 0.0010000000474974513
    case let v as String: return .string(v)
    default: return try ConfigEncoder.encode(value)
    }
}

struct KeyedWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let box: EncodedBox
    var codingPath: [CodingKey] { [] }

    private func set(_ key: Key, _ value: ConfigValue) {
        guard case .map(var map) = box.value else { return }
        map[snakeCase(key.stringValue)] = value
        box.value = .map(map)
    }

    mutating func encodeNil(forKey key: Key) throws { set(key, .null) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws { set(key, try encodeScalar(value)) }
    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey key: Key) throws {
        set(key, try value.map { try encodeScalar($0) } ?? .null)
    }
    // The protocol's concrete overloads would skip nil silently; route them all to the generic one.
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws { set(key, value.map { .string($0) } ?? .null) }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws { set(key, value.map { .int($0) } ?? .null) }
    mutating func encodeIfPresent(_ value: Double?, forKey key: Key) throws { set(key, value.map { .double($0) } ?? .null) }
    mutating func encodeIfPresent(_ value: Float?, forKey key: Key) throws { set(key, try value.map { try encodeScalar($0) } ?? .null) }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws { set(key, value.map { .bool($0) } ?? .null) }
    mutating func encodeIfPresent(_ value: UInt64?, forKey key: Key) throws { set(key, value.map { .int(Int($0)) } ?? .null) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = EncodedBox()
        child.value = .map(ConfigMap())
        set(key, .null)
        return KeyedEncodingContainer(KeyedWriter<NestedKey>(box: child)) // rarely used by our types
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> UnkeyedEncodingContainer { ListWriter(box: EncodedBox()) }
    mutating func superEncoder() -> Encoder { ConfigEncoder(box: box) }
    mutating func superEncoder(forKey key: Key) -> Encoder { ConfigEncoder(box: box) }
}

struct ListWriter: UnkeyedEncodingContainer {
    let box: EncodedBox
    var codingPath: [CodingKey] { [] }
    var count: Int { if case .list(let items) = box.value { return items.count }; return 0 }

    private func append(_ value: ConfigValue) {
        if case .list(var items) = box.value { items.append(value); box.value = .list(items) } else { box.value = .list([value]) }
    }
    mutating func encodeNil() throws { append(.null) }
    mutating func encode<T: Encodable>(_ value: T) throws { append(try encodeScalar(value)) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        KeyedEncodingContainer(KeyedWriter<NestedKey>(box: EncodedBox()))
    }
    mutating func nestedUnkeyedContainer() -> UnkeyedEncodingContainer { ListWriter(box: EncodedBox()) }
    mutating func superEncoder() -> Encoder { ConfigEncoder(box: box) }
}

struct ScalarWriter: SingleValueEncodingContainer {
    let box: EncodedBox
    var codingPath: [CodingKey] { [] }
    mutating func encodeNil() throws { box.value = .null }
    mutating func encode<T: Encodable>(_ value: T) throws { box.value = try encodeScalar(value) }
}
