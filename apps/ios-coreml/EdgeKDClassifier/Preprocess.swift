import Foundation

/// Pixels → model input exactly as edgekd's `PreprocessSpec.from_image` does it with Pillow 13:
/// luma (gray models) or R, G, B planes; Pillow's BILINEAR resize (separable, antialiased when
/// shrinking, 22-bit fixed point, its pass order); then x = p * scale, 255 * scale - x when
/// inverted, (x - mean) / std, in Float32, NCHW. Foundation only, no UIKit.
enum Preprocess {
    static let precisionBits = 22  // Pillow Resample.c: 32 - 8 - 2

    /// `rgba`: straight (not premultiplied) RGBA bytes, row-major, `width * height * 4` of them.
    static func toTensor(rgba: [UInt8], width: Int, height: Int, spec: PreprocessSpec) -> [Float] {
        let planes: [[Int]] = spec.gray
            ? [luma(rgba: rgba)]
            : (0..<3).map { c in stride(from: c, to: rgba.count, by: 4).map { Int(rgba[$0]) } }
        let plane = spec.height * spec.width
        var out = [Float](repeating: 0, count: planes.count * plane)
        for (c, pixels) in planes.enumerated() {
            let resized = resize(pixels, width: width, height: height, outW: spec.width, outH: spec.height)
            normalize(resized, channel: c, spec: spec, into: &out, offset: c * plane)
        }
        return out
    }

    /// ITU-R 601-2 luma with Pillow's fixed-point weights (Convert.c L24).
    static func luma(rgba: [UInt8]) -> [Int] {
        stride(from: 0, to: rgba.count, by: 4).map { i in
            (Int(rgba[i]) * 19595 + Int(rgba[i + 1]) * 38470 + Int(rgba[i + 2]) * 7471 + 0x8000) >> 16
        }
    }

    /// Pillow 13 runs the vertical pass first when the height shrinks by over twice the width's pixels.
    static func resize(_ src: [Int], width: Int, height: Int, outW: Int, outH: Int) -> [Int] {
        var plane = src
        if outH < height && height - outH > 2 * (width - outW) {
            plane = vertical(plane, width: width, height: height, outH: outH)
            if outW != width { plane = horizontal(plane, width: width, height: outH, outW: outW) }
            return plane
        }
        if outW != width { plane = horizontal(plane, width: width, height: height, outW: outW) }
        if outH != height { plane = vertical(plane, width: outW, height: height, outH: outH) }
        return plane
    }

    /// Resample.c precompute_coeffs + normalize_coeffs_8bpc for the triangle (bilinear) filter.
    private static func coefficients(inSize: Int, outSize: Int) -> (starts: [Int], counts: [Int], weights: [[Int]]) {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = scale < 1.0 ? 1.0 : scale
        let support = 1.0 * filterScale
        let ss = 1.0 / filterScale
        var starts = [Int](), counts = [Int](), weights = [[Int]]()
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let xmin = max(Int(center - support + 0.5), 0)
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var k = [Double](repeating: 0, count: xmax)
            var total = 0.0
            for x in 0..<xmax {
                let t = abs((Double(x + xmin) - center + 0.5) * ss)
                k[x] = t < 1.0 ? 1.0 - t : 0.0
                total += k[x]
            }
            let one = Double(1 << precisionBits)
            weights.append(k.map { raw in
                let w = total != 0.0 ? raw / total : raw
                return w < 0 ? Int(-0.5 + w * one) : Int(0.5 + w * one)
            })
            starts.append(xmin)
            counts.append(xmax)
        }
        return (starts, counts, weights)
    }

    private static func clip8(_ acc: Int) -> Int {
        if acc >= (1 << precisionBits << 8) { return 255 }
        if acc <= 0 { return 0 }
        return acc >> precisionBits
    }

    private static func horizontal(_ src: [Int], width: Int, height: Int, outW: Int) -> [Int] {
        let c = coefficients(inSize: width, outSize: outW)
        var out = [Int](repeating: 0, count: outW * height)
        for y in 0..<height {
            for x in 0..<outW {
                var acc = 1 << (precisionBits - 1)
                for i in 0..<c.counts[x] { acc += src[y * width + c.starts[x] + i] * c.weights[x][i] }
                out[y * outW + x] = clip8(acc)
            }
        }
        return out
    }

    private static func vertical(_ src: [Int], width: Int, height: Int, outH: Int) -> [Int] {
        let c = coefficients(inSize: height, outSize: outH)
        var out = [Int](repeating: 0, count: width * outH)
        for y in 0..<outH {
            for x in 0..<width {
                var acc = 1 << (precisionBits - 1)
                for i in 0..<c.counts[y] { acc += src[(c.starts[y] + i) * width + x] * c.weights[y][i] }
                out[y * width + x] = clip8(acc)
            }
        }
        return out
    }

    /// Float32 steps in numpy's order: p * scale, then 255 * scale - x, then (x - mean) / std.
    private static func normalize(_ pixels: [Int], channel c: Int, spec: PreprocessSpec,
                                  into out: inout [Float], offset: Int) {
        let scale = Float(spec.scale)
        let top = Float(255.0 * spec.scale)
        let mean = Float(spec.mean[spec.mean.count == 1 ? 0 : c])
        let std = Float(spec.std[spec.std.count == 1 ? 0 : c])
        for (i, p) in pixels.enumerated() {
            var x = Float(p) * scale
            if spec.invert { x = top - x }
            out[offset + i] = (x - mean) / std
        }
    }
}
