// Loading a run configuration: YAML file → `_base_` inheritance (paths relative to the file, applied
// recursively, child keys win) → `--set key.path=value` overrides → strict typed decoding → validation.
// The resolved tree is kept so it can be saved in the run directory and reloaded as is.
import Foundation

public struct LoadedConfig {
    public var config: RunConfig
    /// The merged tree (after bases and overrides), as the user wrote it.
    public var tree: ConfigValue
    public var file: String

    /// Every setting with its default filled in, as YAML (saved as run_dir/config.yaml).
    public func resolvedYAML() throws -> String {
        "# resolved configuration (every key, defaults filled in) — from \(file)\n" + (try ConfigEncoder.encode(config)).yaml() + "\n"
    }
}

public enum ConfigLoader {
    public static func load(path: String, overrides: [String] = []) throws -> LoadedConfig {
        var locations: [String: String] = [:]
        var tree = try loadTree(path: path, locations: &locations, chain: [])
        for override in overrides {
            guard let eq = override.firstIndex(of: "="), eq != override.startIndex else { throw ConfigError.badOverride(override) }
            let key = String(override[..<eq]).trimmingCharacters(in: .whitespaces)
            let value = ConfigParser.parseScalar(String(override[override.index(after: eq)...]))
            tree = tree.setting(key.split(separator: ".").map(String.init), to: value)
            locations[key] = "--set \(key)"
        }
        let config = try ConfigDecoder.decode(RunConfig.self, from: tree, locations: locations, file: path)
        try config.validate()
        return LoadedConfig(config: config, tree: tree, file: path)
    }

    /// Parses YAML text directly (tests, resolved configs).
    public static func decode(yaml: String, file: String = "<config>") throws -> RunConfig {
        var locations: [String: String] = [:]
        let tree = try ConfigParser.parse(yaml: yaml, file: file, locations: &locations)
        return try ConfigDecoder.decode(RunConfig.self, from: tree, locations: locations, file: file)
    }

    static func loadTree(path: String, locations: inout [String: String], chain: [String]) throws -> ConfigValue {
        let absolute = URL(fileURLWithPath: path).standardizedFileURL.path
        if chain.contains(absolute) {
            throw ConfigError.invalid(location: path, path: "_base_", reason: "inheritance cycle: \((chain + [absolute]).joined(separator: " → "))")
        }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ConfigError.unreadable(file: path, reason: FileManager.default.fileExists(atPath: path) ? "\(error.localizedDescription)" : "no such file")
        }
        var fileLocations: [String: String] = [:]
        var tree = try ConfigParser.parse(yaml: text, file: path, locations: &fileLocations)
        guard case .map(var map) = tree else {
            throw ConfigError.invalid(location: path, path: "(top level)", reason: "a config file must be a mapping of sections")
        }
        var bases: [String] = []
        switch map["_base_"] {
        case nil: break
        case .string(let s)?: bases = [s]
        case .list(let items)?:
            for item in items {
                guard case .string(let s) = item else {
                    throw ConfigError.invalid(location: fileLocations["_base_"] ?? path, path: "_base_", reason: "expected file names, got \(item.kindDescription)")
                }
                bases.append(s)
            }
        case let other?:
            throw ConfigError.invalid(location: fileLocations["_base_"] ?? path, path: "_base_", reason: "expected a file name or a list, got \(other.kindDescription)")
        }
        map["_base_"] = nil
        tree = .map(map)
        var merged = ConfigValue.map(ConfigMap())
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        for base in bases {
            let basePath = base.hasPrefix("/") ? base : directory.appendingPathComponent(base).path
            merged = try loadTree(path: basePath, locations: &locations, chain: chain + [absolute]).merged(over: merged)
        }
        for (k, v) in fileLocations { locations[k] = v }
        return tree.merged(over: merged)
    }
}

