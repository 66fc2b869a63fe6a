// A Decoder over ConfigValue that is strict where JSONDecoder is lax: YAML keys are snake_case
// (`router_hidden` for the Swift property `routerHidden`), every key a type asks for is recorded, and
// after decoding any key nobody asked for is an error with a did-you-mean from the keys that *were*
// asked for at that level (optional keys included). Type errors name the key path and the file:line.

/// String enums in the config: listed choices in error messages, with suggestions.
public protocol ConfigChoice: CaseIterable, RawRepresentable where RawValue == String {}

final class DecodeTracker {
    var requested: [String: Set<String>] = [:]
    var visited: [String: ConfigMap] = [:]
    let locations: [String: String]
    let fallbackLocation: String

    init(locations: [String: String], fallbackLocation: String) {
        self.locations = locations
        self.fallbackLocation = fallbackLocation
    }

    func location(_ path: String) -> String {
        var p = path
        while !p.isEmpty {
            if let l = locations[p] { return l }
            guard let cut = p.lastIndex(where: { $0 == "." || $0 == "[" }) else { break }
            p = String(p[..<cut])
        }
        return fallbackLocation
    }

    func unknownKeys() -> [ConfigError] {
        visited.keys.sorted().flatMap { path -> [ConfigError] in
            let map = visited[path]!, asked = requested[path] ?? []
            return map.keys.filter { !asked.contains($0) }.map { key in
                let full = path.isEmpty ? key : path + "." + key
                return .unknownKey(location: location(full), path: full,
                                   suggestion: suggestion(for: key, among: Array(asked)), known: asked.sorted())
            }
        }
    }
}

func snakeCase(_ key: String) -> String {
    var out = ""
    for ch in key {
        if ch.isUppercase { if !out.isEmpty { out += "_" }; out += ch.lowercased() } else { out.append(ch) }
    }
    return out
}

func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : path + "." + key }

struct ConfigDecoder: Decoder {
    let value: ConfigValue
    let path: String
    let tracker: DecodeTracker
    var codingPath: [CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func mismatch(_ expected: String) -> ConfigError {
        .invalid(location: tracker.location(path), path: path.isEmpty ? "(top level)" : path,
                 reason: "expected \(expected), got \(value.kindDescription)")
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let map) = value else {
            if case .null = value { return KeyedDecodingContainer(KeyedContainer<Key>(map: ConfigMap(), decoder: self)) }
            throw mismatch("a mapping")
        }
        tracker.visited[path] = map
        return KeyedDecodingContainer(KeyedContainer<Key>(map: map, decoder: self))
    }

    func unkeyedContainer() throws -> UnkeyedDecodingContainer {
        guard case .list(let items) = value else { throw mismatch("a list") }
        return ListContainer(items: items, decoder: self)
    }

    func singleValueContainer() throws -> SingleValueDecodingContainer { ScalarContainer(decoder: self) }

    func child(_ value: ConfigValue, _ path: String) -> ConfigDecoder { ConfigDecoder(value: value, path: path, tracker: tracker) }

    /// Decodes primitives with type checks; everything else through its own init(from:).
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        switch value {
        case .int(let i):
            if T.self == Int.self { return i as! T }
            if T.self == Double.self { return Double(i) as! T }
            if T.self == Float.self { return Float(i) as! T }
            if T.self == UInt64.self, i >= 0 { return UInt64(i) as! T }
            if T.self == Int32.self, let v = Int32(exactly: i) { return v as! T }
            if T.self == String.self { return String(i) as! T }
        case .double(let d):
            if T.self == Double.self { return d as! T }
            if T.self == Float.self { return Float(d) as! T }
            if T.self == Int.self || T.self == UInt64.self || T.self == Int32.self { throw mismatch("an integer") }
            if T.self == String.self { return "\(d)" as! T }
        case .bool(let b):
            if T.self == Bool.self { return b as! T }
        case .string(let s):
            if T.self == String.self { return s as! T }
            if let choices = T.self as? any ConfigChoice.Type {
                return try decodeChoice(s, choices) as! T
            }
        default: break
        }
        if T.self == Int.self || T.self == Int32.self || T.self == UInt64.self { throw mismatch("an integer") }
        if T.self == Double.self || T.self == Float.self { throw mismatch("a number") }
        if T.self == Bool.self { throw mismatch("true or false") }
        if T.self == String.self { throw mismatch("a string") }
        if let choices = T.self as? any ConfigChoice.Type { throw mismatch("one of \(choiceNames(choices).joined(separator: ", "))") }
        do { return try T(from: self) } catch let error as DecodingError {
            throw ConfigError.invalid(location: tracker.location(path), path: path, reason: describe(error))
        }
    }

    private func choiceNames<C: ConfigChoice>(_ type: C.Type) -> [String] { C.allCases.map(\.rawValue) }

    private func decodeChoice<C: ConfigChoice>(_ text: String, _ type: C.Type) throws -> C {
        if let v = C(rawValue: text) { return v }
        let names = C.allCases.map(\.rawValue)
        let hint = suggestion(for: text, among: names).map { " (did you mean '\($0)'?)" } ?? ""
        throw ConfigError.invalid(location: tracker.location(path), path: path,
                                  reason: "'\(text)' is not one of \(names.joined(separator: ", "))\(hint)")
    }

    private func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let c), .typeMismatch(_, let c), .valueNotFound(_, let c), .keyNotFound(_, let c):
            return c.debugDescription
        @unknown default: return "\(error)"
        }
    }
}

struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let map: ConfigMap
    let decoder: ConfigDecoder
    var codingPath: [CodingKey] { [] }

    var allKeys: [Key] { map.keys.compactMap { Key(stringValue: $0) } }

    private func name(_ key: Key) -> String {
        let snake = snakeCase(key.stringValue)
        decoder.tracker.requested[decoder.path, default: []].insert(snake)
        return snake
    }

    func contains(_ key: Key) -> Bool { map[name(key)] != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let v = map[name(key)] else { return true }
        return v == .null
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        let k = name(key)
        guard let v = map[k], v != .null else {
            throw ConfigError.invalid(location: decoder.tracker.location(decoder.path), path: join(decoder.path, k),
                                      reason: "required key is missing")
        }
        return try decoder.child(v, join(decoder.path, k)).decode(T.self)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        let k = name(key)
        guard let v = map[k], v != .null else { return nil }
        return try decoder.child(v, join(decoder.path, k)).decode(T.self)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        let k = name(key)
        return try decoder.child(map[k] ?? .null, join(decoder.path, k)).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> UnkeyedDecodingContainer {
        let k = name(key)
        return try decoder.child(map[k] ?? .null, join(decoder.path, k)).unkeyedContainer()
    }

    func superDecoder() throws -> Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> Decoder {
        let k = name(key)
        return decoder.child(map[k] ?? .null, join(decoder.path, k))
    }
}

struct ListContainer: UnkeyedDecodingContainer {
    let items: [ConfigValue]
    let decoder: ConfigDecoder
    var codingPath: [CodingKey] { [] }
    var count: Int? { items.count }
    var currentIndex = 0
    var isAtEnd: Bool { currentIndex >= items.count }

    init(items: [ConfigValue], decoder: ConfigDecoder) {
        self.items = items
        self.decoder = decoder
    }

    private mutating func nextDecoder() throws -> ConfigDecoder {
        guard !isAtEnd else {
            throw ConfigError.invalid(location: decoder.tracker.location(decoder.path), path: decoder.path,
                                      reason: "list has too few items (\(items.count))")
        }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], decoder.path + "[\(currentIndex)]")
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try nextDecoder().decode(T.self) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try nextDecoder().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> UnkeyedDecodingContainer { try nextDecoder().unkeyedContainer() }
    mutating func superDecoder() throws -> Decoder { try nextDecoder() }
}

struct ScalarContainer: SingleValueDecodingContainer {
    let decoder: ConfigDecoder
    var codingPath: [CodingKey] { [] }
    func decodeNil() -> Bool { decoder.value == .null }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(T.self) }
}

extension ConfigDecoder {
    /// Decodes `T` from a whole config tree; throws every problem at once (types first, then unknown keys).
    static func decode<T: Decodable>(_ type: T.Type, from value: ConfigValue, locations: [String: String], file: String) throws -> T {
        let tracker = DecodeTracker(locations: locations, fallbackLocation: file)
        let result = try ConfigDecoder(value: value, path: "", tracker: tracker).decode(T.self)
        let unknown = tracker.unknownKeys()
        if unknown.count == 1 { throw unknown[0] }
        if !unknown.isEmpty { throw ConfigError.several(unknown) }
        return result
    }
}
