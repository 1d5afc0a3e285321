import CoreGraphics
import UIKit

/// A UIImage (photo or camera frame) → straight RGBA8 bytes at its own pixel size, upright.
/// Opaque images give the pixels Pillow would read; transparent ones are drawn over black by
/// Core Graphics (premultiplied), where Pillow drops alpha: the README lists this difference.
enum ImageDecoding {
    static func rgba(_ image: UIImage) -> (pixels: [UInt8], width: Int, height: Int)? {
        let upright = uprighted(image)
        guard let cg = upright.cgImage else { return nil }
        let width = cg.width, height = cg.height
        var pixels = [UInt8](repeating: 0, count: width * height * 4)
        let drawn: Bool = pixels.withUnsafeMutableBytes { buffer in
            guard let context = CGContext(
                data: buffer.baseAddress, width: width, height: height, bitsPerComponent: 8,
                bytesPerRow: width * 4, space: CGColorSpace(name: CGColorSpace.sRGB)!,
                bitmapInfo: CGImageAlphaInfo.noneSkipLast.rawValue) else { return false }
            context.interpolationQuality = .none  // the app resizes itself, as Pillow does
            context.draw(cg, in: CGRect(x: 0, y: 0, width: width, height: height))
            return true
        }
        return drawn ? (pixels, width, height) : nil
    }

    /// Camera photos carry an EXIF orientation; Pillow reads the stored pixels, the app the upright ones.
    private static func uprighted(_ image: UIImage) -> UIImage {
        guard image.imageOrientation != .up else { return image }
        let format = UIGraphicsImageRendererFormat.default()
        format.scale = 1
        return UIGraphicsImageRenderer(size: image.size, format: format).image { _ in image.draw(at: .zero) }
    }
}
