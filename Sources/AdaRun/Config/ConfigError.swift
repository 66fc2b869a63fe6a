// Configuration errors name the file (and line), the key path and what was expected.

public enum ConfigError: Error, CustomStringConvertible, Equatable {
    case unreadable(file: String, reason: String)
    case syntax(file: String, reason: String)
    /// A value of the wrong type or out of range.
    case invalid(location: String, path: String, reason: String)
    case unknownKey(location: String, path: String, suggestion: String?, known: [String])
    case badOverride(String)
    /// A command-line option that does not fit the model or config (e.g. `--dataset`).
    case badOption(option: String, reason: String)
    case several([ConfigError])

    public var description: String {
        switch self {
        case let .unreadable(file, reason): return "\(file): cannot read the config: \(reason)"
        case let .syntax(file, reason): return "\(file): not valid YAML: \(reason)"
        case let .invalid(location, path, reason): return "\(location): \(path): \(reason)"
        case let .badOption(option, reason): return "\(option): \(reason)"
        case let .unknownKey(location, path, suggestion, known):
            var text = "\(location): unknown key '\(path)'"
            if let suggestion { text += " (did you mean '\(suggestion)'?)" }
            else if !known.isEmpty { text += " (known keys here: \(known.joined(separator: ", ")))" }
            return text
        case let .badOverride(text): return "--set \(text): expected KEY.PATH=VALUE, e.g. train.lr=3e-4"
        case let .several(errors): return errors.map(\.description).joined(separator: "\n")
        }
    }
}

/// Levenshtein distance, for did-you-mean suggestions.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var row = Array(0...b.count)
    for i in 1...max(a.count, 1) where !a.isEmpty {
        var previous = row[0]
        row[0] = i
        for j in 1...max(b.count, 1) where !b.isEmpty {
            let current = row[j]
            row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
            previous = current
        }
    }
    return a.isEmpty ? b.count : row[b.count]
}

/// The closest known key, if it is close enough to be a typo.
func suggestion(for key: String, among known: [String]) -> String? {
    let scored = known.map { ($0, editDistance(key.lowercased(), $0.lowercased())) }.min { $0.1 < $1.1 }
    guard let (best, distance) = scored, distance <= max(2, key.count / 3) else { return nil }
    return best
}
