// Where the parity fixtures live: $ADAROUTE_FIXTURES_DIR, else ../shared/fixtures beside the repository.
import AdaIO
import Foundation

public enum Fixtures {
    public static var root: String {
        if let dir = ProcessInfo.processInfo.environment["ADAROUTE_FIXTURES_DIR"], !dir.isEmpty { return dir }
        // #filePath = <repo>/Sources/AdaTestSupport/Fixtures.swift
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }

    public static func path(_ relative: String) -> String { (root as NSString).appendingPathComponent(relative) }

    public static func open(_ relative: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: path(relative)) }

    /// A fresh temporary directory (tests write only there).
    public static func temporaryDirectory() -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("adaroute-test-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
