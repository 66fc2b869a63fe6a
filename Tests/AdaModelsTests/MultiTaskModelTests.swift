import AdaModels
import AdaNN
import AdaTensor
import AdaTestSupport
import Testing

/// A model with one head per task (3 and 2 classes) over an MHR backbone with two routing rows.
enum MultiTaskTiny {
    static let vit = ViTConfig(embedDim: 16, depth: 2, heads: 2, mlpRatio: 2, patchSize: 4, imageHeight: 8, imageWidth: 12)

    static func spec() -> ModelSpec {
        ModelSpec(backbone: vit, classes: 3,
                  adapter: AdapterSettings(method: .mhr, mhr: MHRConfig(skills: 2, heads: 2, rank: 2, targets: [.qkv, .fc1])),
                  tasks: [.init(name: "street", classes: 3), .init(name: "em", classes: 2)])
    }

    static func model() -> SegmentationModel {
        let model = spec().build(seed: 4)
        var g = RandomGenerator(seed: 9) // non-zero B and distinct routing rows, so tasks differ
        for (_, _, adapter) in MHR.adapters(in: model.backbone) {
            adapter.loraB.assign(Tensor.uniform(adapter.loraB.shape, low: -0.5, high: 0.5, using: &g))
            adapter.routing.logits.assign(Tensor.uniform(adapter.routing.logits.shape, low: -2, high: 2, using: &g))
        }
        return model
    }

    /// Labels for `tasks` (per sample, valid for its task's classes) with some ignored pixels.
    static func labels(tasks: [Int], classes: [Int]) -> [Int32] {
        let plane = vit.imageHeight * vit.imageWidth
        return tasks.enumerated().flatMap { b, t in
            (0..<plane).map { p in (p + b) % 7 == 0 ? 255 : Int32((p / 5 + b) % classes[t]) }
        }
    }
}

@Suite("One head per task")
struct MultiTaskModelTests {
    @Test func headsAreNamedPerTaskAndRoutingHasARowPerTask() throws {
        let model = MultiTaskTiny.spec().build(seed: 4)
        let names = Set(model.namedParameters().map(\.0))
        #expect(names.contains("heads.0.weight") && names.contains("heads.1.weight") && !names.contains("head.weight"))
        #expect(model.heads.map(\.classes) == [3, 2])
        #expect(MHR.adapters(in: model.backbone).allSatisfy { $0.2.routing.logits.shape[0] == 2 })
        #expect(model.heads.allSatisfy { head in head.namedParameters().allSatisfy { $0.1.requiresGrad } })
        // A single-task spec keeps the one `head`.
        var single = MultiTaskTiny.spec()
        single.tasks = []
        #expect(single.build(seed: 4).namedParameters().contains { $0.0 == "head.weight" })
    }

    /// A batch mixing tasks: each sample goes through its task's routing row and head, and the loss is the
    /// mean over all scored pixels — the per-task losses weighted by their scored-pixel counts.
    @Test func mixedBatchLossIsThePixelWeightedMeanOfPerTaskLosses() throws {
        let model = MultiTaskTiny.model()
        model.setTraining(false)
        let tasks = [1, 0, 1, 1]
        let images = MHRTiny.images(batch: tasks.count, seed: 11)
        let labels = MultiTaskTiny.labels(tasks: tasks, classes: [3, 2])
        let (mixed, logits) = try model.loss(images, labels: labels, context: ForwardContext(taskIds: tasks))
        #expect(logits == nil)

        let plane = MultiTaskTiny.vit.imageHeight * MultiTaskTiny.vit.imageWidth
        var weighted = 0.0, scoredTotal = 0
        for task in [0, 1] {
            let rows = tasks.indices.filter { tasks[$0] == task }
            let sub = Tensor.concat(rows.map { images.slice(axis: 0, range: $0..<($0 + 1)) }, axis: 0)
            let subLabels = rows.flatMap { labels[($0 * plane)..<(($0 + 1) * plane)] }
            let scored = subLabels.filter { $0 != 255 }.count
            let (loss, taskLogits) = try model.loss(sub, labels: subLabels, context: ForwardContext(taskIds: rows.map { _ in task }))
            #expect(taskLogits?.shape[1] == [3, 2][task])
            weighted += Double(loss.item) * Double(scored)
            scoredTotal += scored
        }
        #expect(abs(Double(mixed.item) - weighted / Double(scoredTotal)) < 1e-5)
        // Routing matters: the same batch read as all task 0 gives another loss.
        let asTaskZero = try model.loss(images, labels: MultiTaskTiny.labels(tasks: [0, 0, 0, 0], classes: [3, 2]),
                                        context: ForwardContext(taskIds: [0, 0, 0, 0])).loss.item
        #expect(abs(asTaskZero - mixed.item) > 1e-4)
    }

    @Test func mixedBatchGradientsMatchFiniteDifferences() throws {
        let model = MultiTaskTiny.model()
        model.setTraining(false)
        let tasks = [0, 1, 0]
        let images = MHRTiny.images(batch: tasks.count, seed: 12)
        let labels = MultiTaskTiny.labels(tasks: tasks, classes: [3, 2])
        let adapter = MHR.adapters(in: model.backbone)[0].2
        let inputs = [model.heads[0].namedParameters()[0].1, model.heads[1].namedParameters()[0].1, adapter.loraA, adapter.routing.logits]
        let report = GradCheck.run(inputs, step: 1e-2, rtol: 2e-2, atol: 2e-3) { _ in
            try! model.loss(images, labels: labels, context: ForwardContext(taskIds: tasks)).loss
        }
        #expect(report.passed, "\(report)")
    }

    @Test func selectingRowsKeepsTheirOrderAndGradients() throws {
        var g = RandomGenerator(seed: 1)
        let tokens = Tensor.normal([5, 3, 2], using: &g, requiresGrad: true)
        let input = HeadInput(tokens: tokens, gridHeight: 1, gridWidth: 3, taps: [tokens * 2])
        let picked = input.selecting(rows: [1, 2, 4])
        #expect(picked.tokens.shape == [3, 3, 2])
        for (i, row) in [1, 2, 4].enumerated() {
            #expect(picked.tokens.slice(axis: 0, range: i..<(i + 1)).values == tokens.slice(axis: 0, range: row..<(row + 1)).values)
        }
        #expect(picked.taps[0].values == picked.tokens.values.map { $0 * 2 })
        let report = GradCheck.run([tokens]) { inputs in
            HeadInput(tokens: inputs[0], gridHeight: 1, gridWidth: 3).selecting(rows: [4, 0, 1]).tokens
        }
        #expect(report.passed, "\(report)")
    }

    @Test func inferenceUsesTheRequestedTasksHead() {
        let model = MultiTaskTiny.model()
        model.setTraining(false)
        let images = MHRTiny.images(batch: 1, seed: 13)
        #expect(model(images, context: ForwardContext(taskIds: [0])).shape[1] == 3)
        #expect(model(images, context: ForwardContext(taskIds: [1])).shape[1] == 2)
        #expect(model.classes(task: 1) == 2)
    }
}
