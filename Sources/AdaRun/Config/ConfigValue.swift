// The configuration as a tree of plain values, parsed from YAML (Yams), before it is decoded into
// typed sections. Merging (`_base_` inheritance) and `--set key.path=value` overrides work on this
// tree; every key remembers the file and line it came from, so errors can point at it.
import Foundation
import Yams

public indirect enum ConfigValue: Equatable, Sendable {
    case null
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list([ConfigValue])
    case map(ConfigMap)

    /// A short description of the value's kind, for error messages.
    public var kindDescription: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "boolean \(b)"
        case .int(let i): return "integer \(i)"
        case .double(let d): return "number \(d)"
        case .string(let s): return "string '\(s)'"
        case .list: return "a list"
        case .map: return "a mapping"
        }
    }
}

/// A mapping that keeps its keys in file order.
public struct ConfigMap: Equatable, Sendable {
    public private(set) var keys: [String] = []
    private var values: [String: ConfigValue] = [:]

    public init() {}

    public subscript(key: String) -> ConfigValue? {
        get { values[key] }
        set {
            if let newValue {
                if values[key] == nil { keys.append(key) }
                values[key] = newValue
            } else if values.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var entries: [(String, ConfigValue)] { keys.map { ($0, values[$0]!) } }
}

public enum ConfigParser {
    /// Parses YAML text. `locations` receives "file:line" for every key path (dotted).
    public static func parse(yaml text: String, file: String, locations: inout [String: String]) throws -> ConfigValue {
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ConfigError.syntax(file: file, reason: "\(error)")
        }
        guard let node else { return .map(ConfigMap()) }
        return try convert(node, path: "", file: file, locations: &locations)
    }

    static func convert(_ node: Node, path: String, file: String, locations: inout [String: String]) throws -> ConfigValue {
        switch node {
        case .scalar(let scalar):
            if node.null != nil && scalar.style == .plain { return .null }
            switch node.tag.rawValue {
            case Tag.Name.bool.rawValue: return node.bool.map(ConfigValue.bool) ?? .string(scalar.string)
            case Tag.Name.int.rawValue: return node.int.map(ConfigValue.int) ?? .string(scalar.string)
            case Tag.Name.float.rawValue: return node.float.map(ConfigValue.double) ?? .string(scalar.string)
            default: return .string(scalar.string)
            }
        case .sequence(let sequence):
            return .list(try sequence.enumerated().map { i, item in
                try convert(item, path: path + "[\(i)]", file: file, locations: &locations)
            })
        case .mapping(let mapping):
            var map = ConfigMap()
            for (keyNode, valueNode) in mapping {
                guard let key = keyNode.string else {
                    throw ConfigError.syntax(file: file, reason: "line \((keyNode.mark?.line ?? 0)): mapping keys must be strings")
                }
                let child = path.isEmpty ? key : path + "." + key
                if map[key] != nil {
                    throw ConfigError.invalid(location: "\(file):\(keyNode.mark?.line ?? 0)", path: child, reason: "key given twice")
                }
                locations[child] = "\(file):\(keyNode.mark?.line ?? 0)"
                map[key] = try convert(valueNode, path: child, file: file, locations: &locations)
            }
            return .map(map)
        case .alias:
            throw ConfigError.syntax(file: file, reason: "YAML aliases are not supported")
        }
    }

    /// A command-line value: YAML flow syntax, so `3e-4`, `true`, `[512, 512]`, `null` and `text` all work.
    public static func parseScalar(_ text: String) -> ConfigValue {
        var ignored: [String: String] = [:]
        if let value = try? parse(yaml: "v: \(text)", file: "--set", locations: &ignored), case .map(let map) = value, let v = map["v"] {
            return v
        }
        return .string(text)
    }
}

extension ConfigValue {
    /// Deep merge: mappings merge key by key (self overrides base); anything else replaces.
    public func merged(over base: ConfigValue) -> ConfigValue {
        guard case .map(let top) = self, case .map(var result) = base else { return self }
        for (key, value) in top.entries {
            result[key] = result[key].map { value.merged(over: $0) } ?? value
        }
        return .map(result)
    }

    /// Sets the value at a dotted key path, creating mappings on the way.
    public func setting(_ path: [String], to value: ConfigValue) -> ConfigValue {
        guard let first = path.first else { return value }
        var map: ConfigMap
        if case .map(let existing) = self { map = existing } else { map = ConfigMap() }
        map[first] = (map[first] ?? .map(ConfigMap())).setting(Array(path.dropFirst()), to: value)
        return .map(map)
    }

    /// YAML text of this value (mappings in their order).
    public func yaml(indent: Int = 0) -> String {
        let pad = String(repeating: "  ", count: indent)
        switch self {
        case .map(let map):
            if map.keys.isEmpty { return "{}" }
            return map.entries.map { key, value in
                switch value {
                case .map(let m) where !m.keys.isEmpty: return "\(pad)\(key):\n" + value.yaml(indent: indent + 1)
                case .list(let items) where items.contains(where: { if case .map = $0 { return true }; return false }):
                    return "\(pad)\(key):\n" + items.map { "\(pad)  -\n" + $0.yaml(indent: indent + 2) }.joined(separator: "\n")
                default: return "\(pad)\(key): \(value.inlineYAML)"
                }
            }.joined(separator: "\n")
        default:
            return pad + inlineYAML
        }
    }

    var inlineYAML: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .int(let i): return "\(i)"
        case .double(let d): return d == d.rounded() && abs(d) < 1e15 ? String(format: "%.1f", d) : "\(d)"
        case .string(let s):
            let plain = s.range(of: #"^[A-Za-z_./][A-Za-z0-9_./\- ]*$"#, options: .regularExpression) != nil
                && !["true", "false", "null", "yes", "no", "on", "off", "~"].contains(s.lowercased()) && !s.hasSuffix(" ")
            return plain ? s : "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        case .list(let items): return "[" + items.map(\.inlineYAML).joined(separator: ", ") + "]"
        case .map(let map): return "{" + map.entries.map { "\($0.0): \($0.1.inlineYAML)" }.joined(separator: ", ") + "}"
        }
    }
}
