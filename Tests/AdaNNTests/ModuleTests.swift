import AdaNN
import AdaTensor
import Testing

/// A two-level toy tree: names must compose as timm's dotted keys.
final class Leaf: Module {
    let weight = Tensor.ones([2, 3], requiresGrad: true)
    let bias = Tensor.zeros([2], requiresGrad: true)
    let runningMean = Tensor.zeros([2])
    override var localParameters: [(String, Tensor)] { [("weight", weight), ("bias", bias)] }
    override var localBuffers: [(String, Tensor)] { [("running_mean", runningMean)] }
}

final class Tree: Module {
    let blocks = [Leaf(), Leaf()]
    let head = Leaf()
    override var children: [(String, Module)] {
        blocks.enumerated().map { ("blocks.\($0.offset)", $0.element as Module) } + [("head", head)]
    }
}

@Suite("Module tree")
struct ModuleTests {
    @Test func namesComposeAsDottedKeys() {
        let names = Tree().namedParameters().map(\.0)
        #expect(names == ["blocks.0.weight", "blocks.0.bias", "blocks.1.weight", "blocks.1.bias", "head.weight", "head.bias"])
        #expect(Tree().namedBuffers().map(\.0) == ["blocks.0.running_mean", "blocks.1.running_mean", "head.running_mean"])
    }

    @Test func freezingLeavesOnlyTheChosenPartTrainable() {
        let tree = Tree()
        tree.setTrainable(false)
        tree.head.setTrainable(true)
        #expect(tree.trainableParameters().map(\.0) == ["head.weight", "head.bias"])
        #expect(tree.parameterCount() == 24 && tree.parameterCount(trainableOnly: true) == 8)
    }

    @Test func trainingModePropagates() {
        let tree = Tree()
        tree.setTraining(false)
        #expect(!tree.blocks[1].isTraining && !tree.head.isTraining)
    }
}
