import CoreML
import Foundation

/// The .mlpackage from the `iphone-coreml` target (Xcode compiles it into the app as .mlmodelc)
/// and the preprocess.json written beside it, both bundled as resources.
final class Classifier {
    static let modelName = "model.int8w"  // edgekd writes model.int8w.mlpackage (and model.fp16.mlpackage)

    let spec: PreprocessSpec
    private let model: MLModel
    private let inputName: String

    struct Prediction: Identifiable {
        let id = UUID()
        let label: String
        let probability: Double
    }

    init(bundle: Bundle = .main) throws {
        guard let specURL = bundle.url(forResource: "preprocess", withExtension: "json") else {
            throw PreprocessSpec.SpecError.invalid("preprocess.json is not in the app bundle")
        }
        spec = try PreprocessSpec(data: Data(contentsOf: specURL))
        guard let modelURL = bundle.url(forResource: Classifier.modelName, withExtension: "mlmodelc") else {
            throw PreprocessSpec.SpecError.invalid("\(Classifier.modelName).mlpackage is not in the app bundle")
        }
        let config = MLModelConfiguration()
        config.computeUnits = .all  // Neural Engine where Core ML places the ops, else GPU/CPU
        model = try MLModel(contentsOf: modelURL, configuration: config)
        inputName = model.modelDescription.inputDescriptionsByName.keys.first ?? "input"
    }

    /// Straight RGBA pixels → top-k classes (softmax of the model's logits).
    func classify(rgba: [UInt8], width: Int, height: Int, top k: Int = 5) throws -> [Prediction] {
        let tensor = Preprocess.toTensor(rgba: rgba, width: width, height: height, spec: spec)
        let shape = [1, spec.channels, spec.height, spec.width].map { NSNumber(value: $0) }
        let input = try MLMultiArray(shape: shape, dataType: .float32)
        tensor.withUnsafeBufferPointer { src in
            input.dataPointer.bindMemory(to: Float.self, capacity: tensor.count)
                .update(from: src.baseAddress!, count: tensor.count)
        }
        let features = try MLDictionaryFeatureProvider(dictionary: [inputName: MLFeatureValue(multiArray: input)])
        let output = try model.prediction(from: features)
        guard let name = output.featureNames.first, let logits = output.featureValue(for: name)?.multiArrayValue else {
            throw PreprocessSpec.SpecError.invalid("the model returned no logits")
        }
        let values = (0..<logits.count).map { logits[$0].doubleValue }
        let top = values.max() ?? 0
        let exps = values.map { Foundation.exp($0 - top) }
        let total = exps.reduce(0, +)
        return exps.enumerated()
            .map { Prediction(label: spec.labels[$0.offset], probability: $0.element / total) }
            .sorted { $0.probability > $1.probability }
            .prefix(k).map { $0 }
    }
}
