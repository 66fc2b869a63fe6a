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

    /// A fresh temporary directory (tests write only there). All of a test process's directories live
    /// under one parent named after its pid; parents of processes that have exited are removed on first
    /// use, so test runs never accumulate in the temporary folder.
    public static func temporaryDirectory() -> URL {
        let url = processScratch.appendingPathComponent(UUID().uuidString)
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    private static let processScratch: URL = {
        let fm = FileManager.default
        let base = fm.temporaryDirectory
        let prefix = "adaroute-tests-"
        for name in (try? fm.contentsOfDirectory(atPath: base.path)) ?? [] where name.hasPrefix(prefix) {
            // kill(pid, 0) fails with ESRCH once the owning test process is gone.
            if let pid = Int32(name.dropFirst(prefix.count)), kill(pid, 0) != 0 && errno == ESRCH {
                try? fm.removeItem(at: base.appendingPathComponent(name))
            }
        }
        return base.appendingPathComponent(prefix + "\(getpid())")
    }()
}
