// curves.png of a run: training loss (raw + smoothed) and validation mIoU over iterations.
enum RunCurves {
    static func write(loss: [(Double, Double)], mIoU: [(Double, Double)], to path: String) throws {
        let panels = CurvePlot.trainingPanels(loss: loss.map { (Int($0.0), $0.1) }, validation: mIoU.map { (Int($0.0), $0.1) })
        try CurvePlot.writePNG(path: path, panels: panels)
    }
}
