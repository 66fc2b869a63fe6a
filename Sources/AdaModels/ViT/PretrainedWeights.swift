// Loading a timm `model.safetensors` into the backbone by name. The classifier (`head.*`, `fc_norm.*`)
// of an ImageNet checkpoint is reported as unexpected and ignored; a position embedding made for another
// grid is resampled as timm's resample_abs_pos_embed does.
import AdaIO
import AdaNN
import AdaTensor

extension VisionTransformer {
    /// Copies every backbone tensor from `path`; returns what was missing or unused. Shape mismatches
    /// (other than a resamplable pos_embed) throw, naming the tensor.
    public func loadPretrained(path: String) throws -> LoadReport {
        let file = try SafeTensorsFile(path: path)
        var report = try load(file) { $0 == "pos_embed" ? nil : $0 }
        report.unexpected.removeAll { $0 == "pos_embed" }
        guard let entry = file.entry("pos_embed") else { return report }
        let source = try file.tensor("pos_embed")
        let prefix = 1, grid = entry.shape.count == 3 ? entry.shape[1] - prefix : -1
        let side = Int(Double(max(grid, 0)).squareRoot().rounded())
        if entry.shape == posEmbed.shape {
            posEmbed.assign(source)
        } else if entry.shape.count == 3, entry.shape[0] == 1, entry.shape[2] == config.embedDim, side * side == grid {
            posEmbed.assign(PositionEmbedding.resample(source, from: (side, side), to: (config.gridHeight, config.gridWidth)))
            report.notes.append("pos_embed resampled from a \(side)×\(side) to a \(config.gridHeight)×\(config.gridWidth) grid (bicubic, antialiased)")
        } else {
            throw StateDictError.shapeMismatch(source: path, tensor: "pos_embed", expected: posEmbed.shape, actual: entry.shape)
        }
        report.missing.removeAll { $0 == "pos_embed" }
        report.loaded.append("pos_embed")
        return report
    }
}
