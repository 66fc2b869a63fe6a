import AdaIO
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

@Suite("safetensors")
struct SafeTensorsTests {
    @Test func roundTripWithMetadata() throws {
        let dir = Fixtures.temporaryDirectory()
        let path = dir.appendingPathComponent("t.safetensors").path
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        writer.add("a.weight", Tensor(shape: [2, 3], values: [1, 2, 3, 4, 5, 6]))
        writer.add("idx", integers: [3, 1, 4], shape: [3])
        try writer.write(to: path)
        let file = try SafeTensorsFile(path: path)
        #expect(file.metadata == ["format": "pt"])
        #expect(try file.tensor("a.weight").values == [1, 2, 3, 4, 5, 6])
        #expect(try file.integers("idx").values == [3, 1, 4])
    }
}
