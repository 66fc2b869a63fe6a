// The seam between the trainer and the plotter (Report/CurvePlot.swift).
enum RunCurves {
    static func write(loss: [(Double, Double)], mIoU: [(Double, Double)], to path: String) throws {}
}
