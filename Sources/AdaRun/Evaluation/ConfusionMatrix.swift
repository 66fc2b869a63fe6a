// Segmentation metrics exactly as mmseg's IoUMetric (seg-heads-and-metrics.md §5): pixel counts are
// accumulated over the whole split, never averaged per image. For K classes, with ignored pixels
// (label 255) left out:
//   I_k = #(pred = k ∧ label = k),  P_k = #(pred = k),  L_k = #(label = k),  U_k = P_k + L_k − I_k
//   IoU_k = I_k / U_k,  Acc_k = I_k / L_k  (NaN when the denominator is 0),
//   mIoU = nanmean IoU,  mAcc = nanmean Acc,  aAcc = Σ I_k / Σ L_k.
// All four follow from one K×K confusion matrix, so that is what is stored (and merged, and saved).
//
// Legend: K classes; matrix[label][prediction] (rows = ground truth, columns = prediction).
import Foundation

public struct ConfusionMatrix: Equatable, Sendable {
    public let classes: Int
    /// Label value that is skipped (mmseg's ignore_index).
    public let ignoreIndex: Int
    /// counts[label · K + prediction], non-ignored pixels only.
    public private(set) var counts: [Int]

    public init(classes: Int, ignoreIndex: Int = 255) {
        precondition(classes >= 1, "ConfusionMatrix: needs at least one class, got \(classes)")
        precondition(ignoreIndex < 0 || ignoreIndex >= classes,
                     "ConfusionMatrix: ignore index \(ignoreIndex) is a class index (classes 0..<\(classes))")
        self.classes = classes
        self.ignoreIndex = ignoreIndex
        counts = [Int](repeating: 0, count: classes * classes)
    }

    /// A matrix from saved counts (rows = label, columns = prediction), e.g. `EvaluationReport.confusionMatrix`.
    public init(counts rows: [[Int]], ignoreIndex: Int = 255) {
        self.init(classes: rows.count, ignoreIndex: ignoreIndex)
        for (label, row) in rows.enumerated() {
            precondition(row.count == classes, "ConfusionMatrix: row \(label) has \(row.count) counts for \(classes) classes")
            precondition(row.allSatisfy { $0 >= 0 }, "ConfusionMatrix: row \(label) has a negative count")
            for (prediction, n) in row.enumerated() { counts[label * classes + prediction] = n }
        }
    }

    /// Pixels `label` predicted as `prediction`.
    public subscript(label label: Int, prediction prediction: Int) -> Int { counts[label * classes + prediction] }

    /// The matrix as K rows (label) of K counts (prediction).
    public var rows: [[Int]] { (0..<classes).map { Array(counts[$0 * classes ..< ($0 + 1) * classes]) } }

    /// Number of non-ignored pixels counted so far.
    public var labelledPixels: Int { counts.reduce(0, +) }

    // MARK: Accumulation

    /// Adds one image (or any set of pixels): `count` predictions in 0..<K and labels in 0..<K or the ignore index.
    public mutating func add(predictions: UnsafePointer<Int32>, labels: UnsafePointer<UInt8>, count: Int) {
        accumulate(predictions, labels, count)
    }

    public mutating func add(predictions: UnsafePointer<Int32>, labels: UnsafePointer<Int32>, count: Int) {
        accumulate(predictions, labels, count)
    }

    public mutating func add(predictions: [Int32], labels: [UInt8]) {
        precondition(predictions.count == labels.count,
                     "ConfusionMatrix.add: \(predictions.count) predictions for \(labels.count) labels")
        predictions.withUnsafeBufferPointer { p in
            labels.withUnsafeBufferPointer { l in accumulate(p.baseAddress!, l.baseAddress!, p.count) }
        }
    }

    public mutating func add(predictions: [Int32], labels: [Int32]) {
        precondition(predictions.count == labels.count,
                     "ConfusionMatrix.add: \(predictions.count) predictions for \(labels.count) labels")
        predictions.withUnsafeBufferPointer { p in
            labels.withUnsafeBufferPointer { l in accumulate(p.baseAddress!, l.baseAddress!, p.count) }
        }
    }

    private mutating func accumulate<Label: BinaryInteger>(_ predictions: UnsafePointer<Int32>,
                                                          _ labels: UnsafePointer<Label>, _ count: Int) {
        guard count > 0 else { return }
        let k = classes, ignore = ignoreIndex
        counts.withUnsafeMutableBufferPointer { buffer in
            let table = buffer.baseAddress!
            for i in 0..<count {
                let label = Int(labels[i])
                if label == ignore { continue }
                let prediction = Int(predictions[i])
                precondition(label >= 0 && label < k,
                             "ConfusionMatrix.add: label \(label) at pixel \(i) is neither a class (0..<\(k)) nor the ignore index \(ignore)")
                precondition(prediction >= 0 && prediction < k,
                             "ConfusionMatrix.add: prediction \(prediction) at pixel \(i) is not a class (0..<\(k))")
                table[label &* k &+ prediction] &+= 1
            }
        }
    }

    /// Adds another matrix's counts (e.g. from another worker or shard).
    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classes == classes && other.ignoreIndex == ignoreIndex,
                     "ConfusionMatrix.merge: \(other.classes) classes (ignore \(other.ignoreIndex)) into \(classes) classes (ignore \(ignoreIndex))")
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public func merged(_ other: ConfusionMatrix) -> ConfusionMatrix {
        var result = self
        result.merge(other)
        return result
    }

    // MARK: Metrics

    /// mmseg's IoUMetric values as fractions in [0, 1] (the text and JSON reports show them ×100).
    public var metrics: SegmentationMetrics {
        var intersection = [Int](repeating: 0, count: classes)
        var labelArea = [Int](repeating: 0, count: classes)
        var predictedArea = [Int](repeating: 0, count: classes)
        for label in 0..<classes {
            for prediction in 0..<classes {
                let n = counts[label * classes + prediction]
                labelArea[label] += n
                predictedArea[prediction] += n
            }
            intersection[label] = counts[label * classes + label]
        }
        func ratio(_ a: Int, _ b: Int) -> Double { b == 0 ? .nan : Double(a) / Double(b) }
        let iou = (0..<classes).map { ratio(intersection[$0], predictedArea[$0] + labelArea[$0] - intersection[$0]) }
        let accuracy = (0..<classes).map { ratio(intersection[$0], labelArea[$0]) }
        return SegmentationMetrics(iou: iou, accuracy: accuracy, meanIoU: nanMean(iou), meanAccuracy: nanMean(accuracy),
                                   pixelAccuracy: ratio(intersection.reduce(0, +), labelArea.reduce(0, +)),
                                   labelPixels: labelArea, predictedPixels: predictedArea)
    }

    // MARK: Reports

    /// mmseg's per-class table (IoU and Acc ×100, 2 decimals, "nan" when undefined) and the three summary numbers.
    public func table(classNames: [String]? = nil) -> String {
        let names = resolvedNames(classNames)
        let m = metrics
        func percent(_ value: Double) -> String { value.isNaN ? "nan" : String(format: "%.2f", value * 100) }
        let nameWidth = max(5, names.map(\.count).max() ?? 0)
        let numberWidth = 6
        func pad(_ s: String, _ width: Int, right: Bool) -> String {
            let fill = String(repeating: " ", count: max(0, width - s.count))
            return right ? fill + s : s + fill
        }
        let rule = "+" + String(repeating: "-", count: nameWidth + 2) + "+"
            + String(repeating: "-", count: numberWidth + 2) + "+" + String(repeating: "-", count: numberWidth + 2) + "+"
        var lines = [rule,
                     "| \(pad("Class", nameWidth, right: false)) | \(pad("IoU", numberWidth, right: true)) | \(pad("Acc", numberWidth, right: true)) |",
                     rule]
        for k in 0..<classes {
            lines.append("| \(pad(names[k], nameWidth, right: false)) | \(pad(percent(m.iou[k]), numberWidth, right: true)) | \(pad(percent(m.accuracy[k]), numberWidth, right: true)) |")
        }
        lines.append(rule)
        lines.append("aAcc \(percent(m.pixelAccuracy))  mIoU \(percent(m.meanIoU))  mAcc \(percent(m.meanAccuracy))")
        return lines.joined(separator: "\n")
    }

    /// Per-class and summary metrics ×100 (null where undefined) plus the raw matrix, ready for JSONEncoder.
    public func json(classNames: [String]? = nil) -> EvaluationReport {
        let names = resolvedNames(classNames)
        let m = metrics
        func percent(_ value: Double) -> Double? { value.isNaN ? nil : value * 100 }
        let perClass = (0..<classes).map { k in
            EvaluationReport.ClassReport(name: names[k], iou: percent(m.iou[k]), acc: percent(m.accuracy[k]),
                                         labelPixels: m.labelPixels[k], predictedPixels: m.predictedPixels[k])
        }
        return EvaluationReport(classes: perClass, mIoU: percent(m.meanIoU), mAcc: percent(m.meanAccuracy),
                                aAcc: percent(m.pixelAccuracy), ignoreIndex: ignoreIndex, confusionMatrix: rows)
    }

    private func resolvedNames(_ names: [String]?) -> [String] {
        guard let names else { return (0..<classes).map { "class\($0)" } }
        precondition(names.count == classes, "ConfusionMatrix: \(names.count) class names for \(classes) classes")
        return names
    }
}

/// mean over the non-NaN values; NaN when there are none (numpy's nanmean).
func nanMean(_ values: [Double]) -> Double {
    let defined = values.filter { !$0.isNaN }
    return defined.isEmpty ? .nan : defined.reduce(0, +) / Double(defined.count)
}

/// IoUMetric's numbers as fractions in [0, 1]; NaN where a class has no pixels to divide by.
public struct SegmentationMetrics: Equatable, Sendable {
    /// IoU_k = I_k / U_k per class.
    public var iou: [Double]
    /// Acc_k = I_k / L_k per class.
    public var accuracy: [Double]
    /// mIoU: nanmean of `iou`.
    public var meanIoU: Double
    /// mAcc: nanmean of `accuracy`.
    public var meanAccuracy: Double
    /// aAcc: correct non-ignored pixels / non-ignored pixels.
    public var pixelAccuracy: Double
    /// L_k and P_k (non-ignored pixels).
    public var labelPixels: [Int]
    public var predictedPixels: [Int]

    /// Equality that treats NaN as equal to NaN (undefined classes match).
    public static func == (a: SegmentationMetrics, b: SegmentationMetrics) -> Bool {
        func same(_ x: Double, _ y: Double) -> Bool { x == y || (x.isNaN && y.isNaN) }
        return a.iou.count == b.iou.count && zip(a.iou, b.iou).allSatisfy(same)
            && a.accuracy.count == b.accuracy.count && zip(a.accuracy, b.accuracy).allSatisfy(same)
            && same(a.meanIoU, b.meanIoU) && same(a.meanAccuracy, b.meanAccuracy)
            && same(a.pixelAccuracy, b.pixelAccuracy)
            && a.labelPixels == b.labelPixels && a.predictedPixels == b.predictedPixels
    }
}

/// The JSON form of an evaluation: values ×100 (percent), null where undefined (a class absent from both
/// labels and predictions, or no labelled pixel at all); `confusion_matrix[label][prediction]` in pixels.
public struct EvaluationReport: Codable, Equatable, Sendable {
    public struct ClassReport: Codable, Equatable, Sendable {
        public var name: String
        public var iou: Double?
        public var acc: Double?
        public var labelPixels: Int
        public var predictedPixels: Int

        enum CodingKeys: String, CodingKey {
            case name, iou, acc
            case labelPixels = "label_pixels", predictedPixels = "predicted_pixels"
        }

        public init(name: String, iou: Double?, acc: Double?, labelPixels: Int, predictedPixels: Int) {
            self.name = name
            self.iou = iou
            self.acc = acc
            self.labelPixels = labelPixels
            self.predictedPixels = predictedPixels
        }

        // Explicit nulls (the synthesised encoder would drop undefined metrics from the object).
        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(iou, forKey: .iou)
            try c.encode(acc, forKey: .acc)
            try c.encode(labelPixels, forKey: .labelPixels)
            try c.encode(predictedPixels, forKey: .predictedPixels)
        }
    }

    public var classes: [ClassReport]
    public var mIoU: Double?
    public var mAcc: Double?
    public var aAcc: Double?
    public var ignoreIndex: Int
    /// Rows = label, columns = prediction.
    public var confusionMatrix: [[Int]]

    enum CodingKeys: String, CodingKey {
        case classes, mIoU, mAcc, aAcc
        case ignoreIndex = "ignore_index", confusionMatrix = "confusion_matrix"
    }

    public init(classes: [ClassReport], mIoU: Double?, mAcc: Double?, aAcc: Double?, ignoreIndex: Int, confusionMatrix: [[Int]]) {
        self.classes = classes
        self.mIoU = mIoU
        self.mAcc = mAcc
        self.aAcc = aAcc
        self.ignoreIndex = ignoreIndex
        self.confusionMatrix = confusionMatrix
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(classes, forKey: .classes)
        try c.encode(mIoU, forKey: .mIoU)
        try c.encode(mAcc, forKey: .mAcc)
        try c.encode(aAcc, forKey: .aAcc)
        try c.encode(ignoreIndex, forKey: .ignoreIndex)
        try c.encode(confusionMatrix, forKey: .confusionMatrix)
    }

    /// The matrix the report was made from.
    public var matrix: ConfusionMatrix { ConfusionMatrix(counts: confusionMatrix, ignoreIndex: ignoreIndex) }

    /// Pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}
