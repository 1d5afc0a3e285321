import Foundation

/// preprocess.json (schema "edgekd.preprocess/1"; edgekd/data/preprocess.schema.json), the spec
/// every edgekd build writes beside its artifact. Reads exactly the schema's keys; an unknown
/// key, another schema version or a layout other than NCHW is refused, as the SDK does.
struct PreprocessSpec {
    static let schema = "edgekd.preprocess/1"
    static let keys: Set<String> = ["schema", "input_shape", "layout", "color", "scale", "mean", "std", "labels", "invert"]

    let channels: Int
    let height: Int
    let width: Int
    let gray: Bool
    let scale: Double
    let mean: [Double]
    let std: [Double]
    let labels: [String]
    let invert: Bool

    enum SpecError: Error, CustomStringConvertible {
        case invalid(String)
        var description: String { if case let .invalid(message) = self { return "preprocess.json: \(message)" }; return "" }
    }

    init(channels: Int, height: Int, width: Int, gray: Bool, scale: Double, mean: [Double], std: [Double],
         labels: [String], invert: Bool) {
        (self.channels, self.height, self.width, self.gray) = (channels, height, width, gray)
        (self.scale, self.mean, self.std, self.labels, self.invert) = (scale, mean, std, labels, invert)
    }

    init(data: Data) throws {
        guard let json = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw SpecError.invalid("not a JSON object")
        }
        let unknown = Set(json.keys).subtracting(PreprocessSpec.keys)
        guard unknown.isEmpty else { throw SpecError.invalid("unknown keys \(unknown.sorted())") }
        guard json["schema"] as? String == PreprocessSpec.schema else { throw SpecError.invalid("schema is not \(PreprocessSpec.schema)") }
        guard json["layout"] as? String == "NCHW" else { throw SpecError.invalid("layout must be NCHW") }
        guard let shape = json["input_shape"] as? [Int], shape.count == 3,
              let color = json["color"] as? String,
              let scale = (json["scale"] as? NSNumber)?.doubleValue,
              let mean = (json["mean"] as? [NSNumber])?.map({ $0.doubleValue }),
              let std = (json["std"] as? [NSNumber])?.map({ $0.doubleValue }),
              let labels = json["labels"] as? [String],
              let invert = json["invert"] as? Bool else {
            throw SpecError.invalid("a key is missing or has the wrong type")
        }
        guard (color == "gray" && shape[0] == 1) || (color == "rgb" && shape[0] == 3) else {
            throw SpecError.invalid("this app handles gray (1 channel) or rgb (3 channels), got \(color) with \(shape[0])")
        }
        self.init(channels: shape[0], height: shape[1], width: shape[2], gray: color == "gray", scale: scale,
                  mean: mean, std: std, labels: labels, invert: invert)
    }
}
