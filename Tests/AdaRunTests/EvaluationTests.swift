// Evaluation engine: mmseg IoUMetric over a confusion matrix, slide/whole/flip inference, fused
// resize-and-argmax, and the Evaluator end to end on tiny random models.
//
// Legend: K classes, H×W model input, H0×W0 original size.
import AdaData
import AdaModels
import AdaRun
import AdaTensor
import AdaTestSupport
import Foundation
import Testing

/// Samples held in memory.
struct MemorySource: SampleSource {
    let samples: [Sample]
    var count: Int { samples.count }
    func sample(at index: Int) throws -> Sample { samples[index] }
}

enum EvalFixtures {
    /// The hand-computed case: 4 classes, 11 pixels, two ignored (one of them the only "2" prediction).
    static let labels: [UInt8] =      [0, 0, 0, 1, 1, 255, 255, 0, 1, 1, 1]
    static let predictions: [Int32] = [0, 0, 1, 1, 3, 2,   0,   0, 1, 1, 1]

    /// A model whose logits at a pixel depend only on that pixel: 1×1 patches, no blocks, no position
    /// embedding, so every window of the image sees the same per-pixel logits.
    static func pixelwiseModel(classes: Int = 3, seed: UInt64 = 1) -> SegmentationModel {
        let spec = ModelSpec(backbone: ViTConfig(embedDim: 8, depth: 0, heads: 1, patchSize: 1, imageHeight: 8, imageWidth: 8),
                             classes: classes)
        let model = spec.build(seed: seed)
        model.backbone.posEmbed.data.update(repeating: 0, count: model.backbone.posEmbed.count)
        // Larger head weights so the classes actually compete.
        let w = (model.head as! LinearHead).weight
        for i in 0..<w.count { w.data[i] *= 50 }
        return model
    }

    static func tinyViT(classes: Int = 3, seed: UInt64 = 7) -> SegmentationModel {
        let spec = ModelSpec(backbone: ViTConfig(embedDim: 32, depth: 1, heads: 2, patchSize: 8, imageHeight: 32, imageWidth: 32),
                             classes: classes)
        let model = spec.build(seed: seed)
        let w = (model.head as! LinearHead).weight
        for i in 0..<w.count { w.data[i] *= 50 }
        return model
    }

    static func randomImage(height: Int, width: Int, seed: UInt64) -> Tensor {
        var generator = RandomGenerator(seed: seed)
        return Tensor.normal([1, 3, height, width], using: &generator)
    }

    static func argmax(_ logits: Tensor) -> [Int32] {
        let k = logits.shape[logits.rank - 3], plane = logits.shape[logits.rank - 2] * logits.shape[logits.rank - 1]
        return (0..<plane).map { i in
            var best = 0
            for c in 1..<k where logits.data[c * plane + i] > logits.data[best * plane + i] { best = c }
            return Int32(best)
        }
    }

    /// The spec's slide formula, written out independently.
    static func referenceBoxes(h: Int, w: Int, crop: (Int, Int), stride: (Int, Int)) -> [WindowBox] {
        let hGrids = max(h - crop.0 + stride.0 - 1, 0) / stride.0 + 1
        let wGrids = max(w - crop.1 + stride.1 - 1, 0) / stride.1 + 1
        var boxes: [WindowBox] = []
        for hIdx in 0..<hGrids {
            for wIdx in 0..<wGrids {
                var y1 = hIdx * stride.0, x1 = wIdx * stride.1
                let y2 = min(y1 + crop.0, h), x2 = min(x1 + crop.1, w)
                y1 = max(y2 - crop.0, 0); x1 = max(x2 - crop.1, 0)
                boxes.append(WindowBox(y1: y1, y2: y2, x1: x1, x2: x2))
            }
        }
        return boxes
    }

    static func cropped(_ image: Tensor, _ box: WindowBox) -> Tensor {
        let height = image.shape[2], width = image.shape[3]
        var values: [Float] = []
        for c in 0..<3 { for y in box.y1..<box.y2 { for x in box.x1..<box.x2 { values.append(image.data[(c * height + y) * width + x]) } } }
        return Tensor(shape: [1, 3, box.height, box.width], values: values)
    }

    static func sample(name: String, width: Int, height: Int, classes: Int, seed: UInt64, withMask: Bool = true) -> Sample {
        var generator = RandomGenerator(seed: seed)
        let pixels = (0..<(width * height * 3)).map { _ in generator.uniform(0, 255) }
        let labels: [UInt8] = (0..<(width * height)).map { _ in
            let r = generator.int(below: classes + 1)
            return r == classes ? 255 : UInt8(r)
        }
        return Sample(image: ImageBuffer(width: width, height: height, pixels: pixels),
                      mask: withMask ? LabelMask(width: width, height: height, labels: labels) : nil, name: name)
    }
}

@Suite("Confusion matrix and IoU metrics")
struct ConfusionMatrixTests {
    @Test func countsAndMetricsMatchTheHandComputedCase() {
        var matrix = ConfusionMatrix(classes: 4)
        matrix.add(predictions: EvalFixtures.predictions, labels: EvalFixtures.labels)
        // (label, prediction) over the 9 non-ignored pixels: (0,0)×3, (0,1)×1, (1,1)×4, (1,3)×1.
        #expect(matrix.rows == [[3, 1, 0, 0], [0, 4, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]])
        #expect(matrix.labelledPixels == 9)
        let m = matrix.metrics
        // IoU0 = 3/(3+4−3), IoU1 = 4/(5+5−4), class 2 absent from both (its one prediction is on an ignored
        // pixel) → NaN, class 3 predicted once, never labelled → 0.
        #expect(m.iou[0] == 0.75 && m.iou[1] == 4.0 / 6.0 && m.iou[2].isNaN && m.iou[3] == 0)
        #expect(m.accuracy[0] == 0.75 && m.accuracy[1] == 0.8 && m.accuracy[2].isNaN && m.accuracy[3].isNaN)
        #expect(abs(m.meanIoU - (0.75 + 4.0 / 6.0 + 0) / 3) < 1e-12, "mIoU skips the NaN class: \(m.meanIoU)")
        #expect(abs(m.meanAccuracy - 0.775) < 1e-12)
        #expect(abs(m.pixelAccuracy - 7.0 / 9.0) < 1e-12)
        #expect(m.labelPixels == [4, 5, 0, 0] && m.predictedPixels == [3, 5, 0, 1])
    }

    @Test func labelTypesAndPointersAgree() {
        var a = ConfusionMatrix(classes: 4), b = ConfusionMatrix(classes: 4), c = ConfusionMatrix(classes: 4)
        a.add(predictions: EvalFixtures.predictions, labels: EvalFixtures.labels)
        b.add(predictions: EvalFixtures.predictions, labels: EvalFixtures.labels.map { Int32($0) })
        EvalFixtures.predictions.withUnsafeBufferPointer { p in
            EvalFixtures.labels.withUnsafeBufferPointer { l in c.add(predictions: p.baseAddress!, labels: l.baseAddress!, count: p.count) }
        }
        #expect(a == b && a == c)
        #expect(a.labelledPixels == 9)
    }

    @Test func ignoredPixelsAreExcludedWhateverTheirPrediction() {
        var matrix = ConfusionMatrix(classes: 2)
        matrix.add(predictions: [0, 1, 1, 0], labels: [255, 255, 255, 255] as [UInt8])
        #expect(matrix.labelledPixels == 0)
        let m = matrix.metrics
        #expect(m.iou.allSatisfy(\.isNaN) && m.meanIoU.isNaN && m.meanAccuracy.isNaN && m.pixelAccuracy.isNaN)
        // A different ignore index.
        var other = ConfusionMatrix(classes: 2, ignoreIndex: -1)
        other.add(predictions: [0, 1], labels: [-1, 1] as [Int32])
        #expect(other.rows == [[0, 0], [0, 1]])
    }

    @Test func mergeAccumulatesOverTheSplitNotPerImage() {
        // Image A: 4 pixels of class 0, all right. Image B: labels 0,1,1,1 all predicted 1.
        var a = ConfusionMatrix(classes: 2), b = ConfusionMatrix(classes: 2), whole = ConfusionMatrix(classes: 2)
        a.add(predictions: [0, 0, 0, 0], labels: [0, 0, 0, 0] as [UInt8])
        b.add(predictions: [1, 1, 1, 1], labels: [0, 1, 1, 1] as [UInt8])
        whole.add(predictions: [0, 0, 0, 0, 1, 1, 1, 1], labels: [0, 0, 0, 0, 0, 1, 1, 1] as [UInt8])
        var merged = a
        merged.merge(b)
        #expect(merged == whole && a.merged(b) == whole)
        // Split level: IoU0 = 4/5, IoU1 = 3/4 → mIoU 0.775; per-image averaging would give (1 + 0.375)/2.
        #expect(abs(merged.metrics.meanIoU - 0.775) < 1e-12)
        #expect(abs((a.metrics.meanIoU + b.metrics.meanIoU) / 2 - 0.6875) < 1e-12)
    }

    @Test func tableShowsPercentWithTwoDecimalsAndNan() {
        var matrix = ConfusionMatrix(classes: 4)
        matrix.add(predictions: EvalFixtures.predictions, labels: EvalFixtures.labels)
        let table = matrix.table(classNames: ["road", "sky", "car", "tree"])
        let lines = table.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("| road") && $0.contains("75.00 |") }, "\(table)")
        #expect(lines.contains { $0.hasPrefix("| sky") && $0.contains("66.67 |") && $0.contains("80.00 |") }, "\(table)")
        #expect(lines.contains { $0.hasPrefix("| car") && $0.components(separatedBy: "nan").count == 3 }, "\(table)")
        #expect(lines.contains { $0.hasPrefix("| tree") && $0.contains("0.00 |") && $0.contains("nan |") }, "\(table)")
        #expect(lines.last == "aAcc 77.78  mIoU 47.22  mAcc 77.50", "\(table)")
        // Rows line up.
        #expect(Set(lines.dropLast().map(\.count)).count == 1, "\(table)")
    }

    @Test func jsonRoundTripsWithNullsAndTheRawMatrix() throws {
        var matrix = ConfusionMatrix(classes: 4)
        matrix.add(predictions: EvalFixtures.predictions, labels: EvalFixtures.labels)
        let report = matrix.json(classNames: ["road", "sky", "car", "tree"])
        #expect(report.classes.map(\.name) == ["road", "sky", "car", "tree"])
        #expect(report.classes[0].iou == 75 && report.classes[2].iou == nil && report.classes[3].acc == nil)
        #expect(abs(report.aAcc! - 700.0 / 9.0) < 1e-9 && abs(report.mAcc! - 77.5) < 1e-9)
        #expect(report.confusionMatrix == matrix.rows)

        let data = try report.jsonData()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"iou\" : null") && text.contains("\"confusion_matrix\"") && text.contains("\"mIoU\""), "\(text)")
        let decoded = try JSONDecoder().decode(EvaluationReport.self, from: data)
        #expect(decoded == report)
        #expect(decoded.matrix == matrix && decoded.matrix.metrics == matrix.metrics)
        // And through JSONSerialization: a plain dictionary.
        let object = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        #expect((object?["ignore_index"] as? Int) == 255)
    }
}

@Suite("Slide window grid")
struct SlideGridTests {
    @Test func ade20kCaseByHand() {
        let windows = SlideWindows(crop: (512, 512), stride: (341, 341))
        #expect(SlideWindows.gridCount(size: 512, crop: 512, stride: 341) == 1)
        #expect(SlideWindows.gridCount(size: 683, crop: 512, stride: 341) == 2)
        #expect(windows.boxes(height: 512, width: 683) == [WindowBox(y1: 0, y2: 512, x1: 0, x2: 512),
                                                           WindowBox(y1: 0, y2: 512, x1: 171, x2: 683)])
    }

    @Test func smallerThanTheCropIsOneWindowOfTheImageSize() {
        let windows = SlideWindows(crop: (512, 512), stride: (341, 341))
        #expect(windows.boxes(height: 300, width: 400) == [WindowBox(y1: 0, y2: 300, x1: 0, x2: 400)])
        // Smaller in one direction only.
        #expect(windows.boxes(height: 300, width: 700) == [WindowBox(y1: 0, y2: 300, x1: 0, x2: 512),
                                                           WindowBox(y1: 0, y2: 300, x1: 188, x2: 700)])
    }

    @Test func exactMultiplesTileWithoutShift() {
        let windows = SlideWindows(crop: (512, 512), stride: (512, 512))
        #expect(windows.boxes(height: 1024, width: 512) == [WindowBox(y1: 0, y2: 512, x1: 0, x2: 512),
                                                            WindowBox(y1: 512, y2: 1024, x1: 0, x2: 512)])
        // crop + stride exactly: two windows, the second ending at the border.
        let overlapping = SlideWindows(crop: (512, 512), stride: (341, 341))
        #expect(overlapping.boxes(height: 853, width: 512).map(\.y1) == [0, 341])
    }

    @Test func matchesTheSpecFormulaAndCoversEveryPixel() {
        let cases: [(h: Int, w: Int, crop: (Int, Int), stride: (Int, Int))] = [
            (512, 683, (512, 512), (341, 341)), (300, 200, (512, 512), (341, 341)), (1024, 1536, (512, 512), (512, 512)),
            (853, 1194, (512, 512), (341, 341)), (512, 2048, (512, 512), (480, 480)), (37, 53, (16, 24), (9, 24)),
            (1, 1, (3, 3), (1, 1)), (100, 77, (32, 20), (32, 7)),
        ]
        for c in cases {
            let boxes = SlideWindows(crop: c.crop, stride: c.stride).boxes(height: c.h, width: c.w)
            #expect(boxes == EvalFixtures.referenceBoxes(h: c.h, w: c.w, crop: c.crop, stride: c.stride), "\(c)")
            #expect(boxes.count == SlideWindows.gridCount(size: c.h, crop: c.crop.0, stride: c.stride.0)
                * SlideWindows.gridCount(size: c.w, crop: c.crop.1, stride: c.stride.1))
            var covered = [Bool](repeating: false, count: c.h * c.w)
            for box in boxes {
                #expect(box.y1 >= 0 && box.x1 >= 0 && box.y2 <= c.h && box.x2 <= c.w)
                #expect(box.height == min(c.crop.0, c.h) && box.width == min(c.crop.1, c.w))
                for y in box.y1..<box.y2 { for x in box.x1..<box.x2 { covered[y * c.w + x] = true } }
            }
            #expect(covered.allSatisfy { $0 }, "\(c)")
        }
    }
}

@Suite("Inference modes")
struct InferenceTests {
    @Test func argmaxResizedEqualsArgmaxOfTheResizedLogits() {
        var generator = RandomGenerator(seed: 3)
        let logits = Tensor.normal([4, 7, 9], using: &generator)
        for (h, w) in [(13, 20), (3, 4), (7, 9), (5, 30), (1, 1)] {
            let expected = EvalFixtures.argmax(logits.reshaped([1, 4, 7, 9]).resizedBilinear(height: h, width: w))
            #expect(Inference.argmaxResized(logits, height: h, width: w) == expected, "\(h)×\(w)")
        }
        // Ties go to the first class (torch.argmax).
        #expect(Inference.argmaxResized(Tensor.zeros([3, 2, 2]), height: 3, width: 3) == [Int32](repeating: 0, count: 9))
        let tied = Tensor(shape: [3, 1, 2], values: [0, 1, 2, 1, 2, 0])
        #expect(Inference.argmaxResized(tied, height: 1, width: 2) == [1, 0])   // (0, 2, 2) → 1; (1, 1, 0) → 0
    }

    @Test func softmaxResizedIsADistributionPerPixel() {
        var generator = RandomGenerator(seed: 4)
        let logits = Tensor.normal([3, 4, 5], std: 3, using: &generator)
        let p = Inference.softmaxResized(logits, height: 6, width: 7)
        #expect(p.shape == [3, 6, 7])
        let resized = logits.reshaped([1, 3, 4, 5]).resizedBilinear(height: 6, width: 7)
        for i in 0..<42 {
            let sum = p.data[i] + p.data[42 + i] + p.data[84 + i]
            #expect(abs(sum - 1) < 1e-5)
            let z = (0..<3).map { exp(Double(resized.data[$0 * 42 + i])) }
            #expect(abs(Double(p.data[42 + i]) - z[1] / z.reduce(0, +)) < 1e-5)
        }
    }

    @Test func imageTensorIsChannelsFirst() {
        let image = ImageBuffer(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        let t = Inference.imageTensor(image)
        #expect(t.shape == [1, 3, 1, 2] && t.values == [1, 4, 2, 5, 3, 6])
    }

    @Test func slideWithACropCoveringTheImageEqualsWhole() {
        let model = EvalFixtures.tinyViT()
        let image = EvalFixtures.randomImage(height: 40, width: 48, seed: 11)
        let whole = Inference(model: model).logits(image)
        #expect(whole.shape == [3, 40, 48])
        for windows in [SlideWindows(crop: (40, 48), stride: (20, 20)), SlideWindows(crop: (64, 64), stride: (32, 32))] {
            let slide = Inference(model: model, options: InferenceOptions(mode: .slide(windows))).logits(image)
            #expect(compare(slide, whole, rtol: 0, atol: 0).passed, "\(windows)")
        }
    }

    @Test func slideAveragesOverlappingWindowsLikeMmseg() {
        // Reference: run each window through whole inference, add into a full buffer, divide by the count.
        let model = EvalFixtures.tinyViT()
        let image = EvalFixtures.randomImage(height: 41, width: 50, seed: 12)
        let windows = SlideWindows(crop: (24, 32), stride: (16, 16))
        let boxes = windows.boxes(height: 41, width: 50)
        #expect(boxes.count == 3 * 3)
        var sum = [Float](repeating: 0, count: 3 * 41 * 50), count = [Float](repeating: 0, count: 41 * 50)
        for box in boxes {
            let logits = Inference(model: model).logits(EvalFixtures.cropped(image, box))
            for k in 0..<3 { for y in 0..<box.height { for x in 0..<box.width {
                sum[(k * 41 + box.y1 + y) * 50 + box.x1 + x] += logits.data[(k * box.height + y) * box.width + x]
            } } }
            for y in box.y1..<box.y2 { for x in box.x1..<box.x2 { count[y * 50 + x] += 1 } }
        }
        let expected = (0..<sum.count).map { sum[$0] / count[$0 % (41 * 50)] }
        let slide = Inference(model: model, options: InferenceOptions(mode: .slide(windows))).logits(image)
        #expect(compare(slide.values, expected, rtol: 0, atol: 0).passed, "\(compare(slide.values, expected, rtol: 0, atol: 0))")
        // It is not the whole-image answer (a global-attention model sees different context per window).
        let whole = Inference(model: model).logits(image)
        #expect(!compare(slide, whole, rtol: 0, atol: 1e-3).passed)
    }

    @Test func slideOnAPixelwiseModelEqualsWhole() {
        // Every window gives the same per-pixel logits, so any misplaced window would show.
        let model = EvalFixtures.pixelwiseModel()
        let image = EvalFixtures.randomImage(height: 21, width: 30, seed: 13)
        let whole = Inference(model: model).logits(image)
        let slide = Inference(model: model, options: InferenceOptions(mode: .slide(SlideWindows(crop: (8, 12), stride: (5, 7))))).logits(image)
        #expect(compare(slide, whole, rtol: 1e-6, atol: 1e-6).passed, "\(compare(slide, whole, rtol: 1e-6, atol: 1e-6))")
    }

    @Test func flipOnAMirrorEquivariantModelChangesNothing() {
        let model = EvalFixtures.pixelwiseModel()
        let image = EvalFixtures.randomImage(height: 9, width: 14, seed: 14)
        let plain = Inference(model: model).logits(image)
        for mode in [InferenceMode.whole, .slide(SlideWindows(crop: (6, 6), stride: (4, 4)))] {
            let flipped = Inference(model: model, options: InferenceOptions(mode: mode, flip: true)).logits(image)
            #expect(compare(flipped, plain, rtol: 1e-6, atol: 1e-6).passed, "\(mode)")
        }
    }

    @Test func flipAveragesTheMirroredViewMirroredBack() {
        let model = EvalFixtures.tinyViT()
        let image = EvalFixtures.randomImage(height: 32, width: 40, seed: 15)
        let plain = Inference(model: model).logits(image)
        let mirrored = Inference.flippedHorizontally(Inference(model: model).logits(Inference.flippedHorizontally(image)))
        let expected = (0..<plain.count).map { (plain.data[$0] + mirrored.data[$0]) * 0.5 }
        let flipped = Inference(model: model, options: InferenceOptions(flip: true)).logits(image)
        #expect(compare(flipped.values, expected, rtol: 0, atol: 1e-6).passed)
        #expect(!compare(flipped, plain, rtol: 0, atol: 1e-3).passed, "the position embedding breaks mirror symmetry")
        #expect(Inference.flippedHorizontally(Tensor(shape: [1, 2, 3], values: [1, 2, 3, 4, 5, 6])).values == [3, 2, 1, 6, 5, 4])
    }

    @Test func predictionsAndProbabilitiesAtTheOriginalSize() {
        let model = EvalFixtures.tinyViT(classes: 4)
        let image = EvalFixtures.randomImage(height: 32, width: 48, seed: 16)
        let inference = Inference(model: model)
        let prediction = inference.predict(image: image, originalHeight: 45, originalWidth: 70, probabilities: true)
        #expect(prediction.width == 70 && prediction.height == 45 && prediction.labels.count == 45 * 70)
        let logits = inference.logits(image)
        #expect(prediction.labels == EvalFixtures.argmax(logits.reshaped([1, 4, 32, 48]).resizedBilinear(height: 45, width: 70)))
        let probabilities = try! #require(prediction.probabilities)
        #expect(probabilities.shape == [4, 45, 70])
        #expect(EvalFixtures.argmax(probabilities) == prediction.labels)
        #expect(Set(prediction.labels).count > 1, "a degenerate model would make this test meaningless")
        #expect(prediction.mask.labels == prediction.labels.map { UInt8($0) })
        // Without the option no probabilities are computed.
        #expect(inference.predict(image: image, originalHeight: 45, originalWidth: 70).probabilities == nil)
    }

    @Test func flipWithProbabilityAveragingIsMmsegsTTA() {
        let model = EvalFixtures.tinyViT()
        let image = EvalFixtures.randomImage(height: 32, width: 40, seed: 17)
        let plain = Inference(model: model).logits(image)
        let mirrored = Inference.flippedHorizontally(Inference(model: model).logits(Inference.flippedHorizontally(image)))
        let pa = Inference.softmaxResized(plain, height: 30, width: 50), pb = Inference.softmaxResized(mirrored, height: 30, width: 50)
        let expected = (0..<pa.count).map { (pa.data[$0] + pb.data[$0]) * 0.5 }
        let options = InferenceOptions(flip: true, flipAverage: .probabilities)
        let prediction = Inference(model: model, options: options).predict(image: image, originalHeight: 30, originalWidth: 50, probabilities: true)
        #expect(compare(prediction.probabilities!.values, expected, rtol: 0, atol: 1e-6).passed)
        #expect(prediction.labels == EvalFixtures.argmax(Tensor(shape: [3, 30, 50], values: expected)))
    }

    @Test func runsWithoutGraphInEvalModeAndRestoresTheMode() {
        let model = EvalFixtures.tinyViT()
        #expect(model.isTraining)
        let logits = Inference(model: model).logits(EvalFixtures.randomImage(height: 32, width: 32, seed: 18))
        #expect(!logits.isRecorded)
        #expect(model.isTraining)
        model.setTraining(false)
        _ = Inference(model: model).logits(EvalFixtures.randomImage(height: 32, width: 32, seed: 18))
        #expect(!model.isTraining)
    }
}

@Suite("Evaluator")
struct EvaluatorTests {
    static func pipeline() -> [any Transform] {
        var config = PipelineConfig()
        config.testScale = [64, 32]
        return config.testTransforms()
    }

    @Test func tinyModelMetricsMatchItsOwnPredictions() throws {
        let model = EvalFixtures.tinyViT(classes: 3)
        let source = MemorySource(samples: [
            EvalFixtures.sample(name: "a", width: 50, height: 40, classes: 3, seed: 1),
            EvalFixtures.sample(name: "b", width: 29, height: 37, classes: 3, seed: 2),
            EvalFixtures.sample(name: "c", width: 64, height: 24, classes: 3, seed: 3),
        ])
        let options = InferenceOptions(mode: .slide(SlideWindows(crop: (32, 32), stride: (24, 24))), flip: true)
        let inference = Inference(model: model, options: options)
        var calls: [[Int]] = []
        let result = try Evaluator(inference: inference, transforms: Self.pipeline()).run(on: source) { calls.append([$0, $1]) }
        #expect(calls == [[1, 3], [2, 3], [3, 3]])
        #expect(result.images == 3 && result.seconds > 0 && result.imagesPerSecond > 0)
        #expect(result.inferenceSeconds > 0 && result.inferenceSeconds <= result.seconds)

        // Independently: predict each transformed sample and count I/P/L straight from the arrays.
        var intersection = [Int](repeating: 0, count: 3), predicted = intersection, labelled = intersection
        var resizedOnce = false
        for index in 0..<source.count {
            var sample = try source.sample(at: index)
            var generator = RandomGenerator(seed: 0)
            for transform in Self.pipeline() { try transform.apply(&sample, generator: &generator) }
            resizedOnce = resizedOnce || sample.image.width != sample.originalWidth
            let prediction = inference.predict(sample)
            #expect(prediction.width == sample.originalWidth && prediction.height == sample.originalHeight)
            for (p, l) in zip(prediction.labels, sample.mask!.labels) where l != 255 {
                labelled[Int(l)] += 1; predicted[Int(p)] += 1
                if Int(p) == Int(l) { intersection[Int(l)] += 1 }
            }
        }
        #expect(resizedOnce, "the test pipeline should resize, so predictions are brought back to the original size")
        let m = result.metrics
        #expect(m.labelPixels == labelled && m.predictedPixels == predicted)
        #expect(result.confusion.labelledPixels == labelled.reduce(0, +))
        let iou = (0..<3).map { Double(intersection[$0]) / Double(predicted[$0] + labelled[$0] - intersection[$0]) }
        for k in 0..<3 { #expect(abs(m.iou[k] - iou[k]) < 1e-12) }
        #expect(abs(m.meanIoU - iou.reduce(0, +) / 3) < 1e-12)
        #expect(abs(m.pixelAccuracy - Double(intersection.reduce(0, +)) / Double(labelled.reduce(0, +))) < 1e-12)
        #expect(model.isTraining, "the model's mode is restored")

        // A limit evaluates a prefix.
        let first = try Evaluator(inference: inference, transforms: Self.pipeline()).run(on: source, limit: 1)
        #expect(first.images == 1 && first.confusion.labelledPixels < result.confusion.labelledPixels)
    }

    @Test func unlabelledOrResizedMasksAreRefused() {
        let model = EvalFixtures.tinyViT()
        let inference = Inference(model: model)
        let unlabelled = MemorySource(samples: [EvalFixtures.sample(name: "u", width: 32, height: 32, classes: 3, seed: 4, withMask: false)])
        #expect(throws: EvaluationError.missingMask(sample: "u")) {
            try Evaluator(inference: inference, transforms: Self.pipeline()).run(on: unlabelled)
        }
        // A pipeline that resizes the mask breaks the original-resolution protocol.
        let labelled = MemorySource(samples: [EvalFixtures.sample(name: "r", width: 40, height: 40, classes: 3, seed: 5)])
        let resizing: [any Transform] = [Resize(scale: (64, 32), keepRatio: true, resizeMask: true)]
        #expect(throws: EvaluationError.maskSizeMismatch(sample: "r", mask: (32, 32), original: (40, 40))) {
            try Evaluator(inference: inference, transforms: resizing).run(on: labelled)
        }
    }
}
