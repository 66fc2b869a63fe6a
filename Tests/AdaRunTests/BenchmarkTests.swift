// `adaroute bench train/infer` and the step profile on a tiny model: the FLOP count grows with the
// decoder, and the profile attributes time to the phases and ops that exist.
import AdaModels
import AdaNN
import AdaRun
import AdaTensor
import Testing

@Suite("Model benchmarks")
struct BenchmarkTests {
    static func settings(head: HeadKind, neck: NeckKind) -> ModelBenchmarkSettings {
        var s = ModelBenchmarkSettings()
        let vit = ViTConfig(embedDim: 32, depth: 2, heads: 2, patchSize: 16, imageHeight: 64, imageWidth: 64)
        var adapter = AdapterSettings(method: .adaroute)
        adapter.adaroute = AdaRouteConfig(rank: 4, routerHidden: 4, kernelSizes: [3])
        s.fixedSpec = ModelSpec(backbone: vit, classes: 3, head: HeadSpec(kind: head, channels: 8, auxWeight: neck == .none ? 0 : 0.4),
                                neck: NeckSpec(kind: neck, detailChannels: 4), adapter: adapter)
        s.batch = 2; s.warmup = 0; s.steps = 1
        return s
    }

    @Test func decodersAddFlopsAndTheirOpsShowInTheProfile() throws {
        let linear = try ModelBenchmark.run(Self.settings(head: .linear, neck: .none), training: true, threads: 1)
        let sta = try ModelBenchmark.run(Self.settings(head: .upernet, neck: .sta), training: true, threads: 1)
        let f2p = try ModelBenchmark.run(Self.settings(head: .upernet, neck: .feature2pyramid), training: true, threads: 1)
        #expect(linear.gflopPerStep < sta.gflopPerStep && sta.gflopPerStep < f2p.gflopPerStep)
        #expect(sta.seconds.median > 0 && sta.peakRSSBytes > 0)

        let profile = try ModelBenchmark.profile(Self.settings(head: .upernet, neck: .sta), threads: 1, steps: 2)
        #expect(profile.forward.map(\.0) == ["backbone", "neck", "head", "loss"])
        #expect(profile.forward.allSatisfy { $0.1 > 0 }, "\(profile.forward)")
        let ops = Set(profile.backward.map(\.name))
        for op in ["conv2d", "batch_norm", "maxPool2d", "adaptiveAvgPool2d", "resizedBilinearChannelsLast", "linear"] {
            #expect(ops.contains(op), "no backward time for \(op): \(ops.sorted())")
        }
        #expect(profile.backward.first { $0.name == "conv2d" }?.calls ?? 0 >= 10) // 4 STA convs + 3 fusions + ≥ 8 head/aux convs
        #expect(abs(profile.backward.reduce(0) { $0 + $1.seconds } - profile.backwardTotal) <= profile.backwardTotal)
        #expect(Autograd.backwardObserver == nil)
    }
}
