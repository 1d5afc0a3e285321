package org.edgekd.classify

/**
 * Pixels → model input exactly as edgekd's PreprocessSpec.from_image does it with Pillow 13:
 * luma (gray models) or R, G, B planes; Pillow's BILINEAR resize (separable, antialiased when
 * shrinking, 22-bit fixed point, its pass order); then x = p * scale, 255 * scale - x when
 * inverted, (x - mean) / std, in float32, NCHW. Plain Kotlin (no Android imports), so it also
 * compiles and runs on a desktop JVM, where the repository's tests compare it with the SDK.
 */
object Preprocess {
    private const val PRECISION_BITS = 22  // Pillow Resample.c: 32 - 8 - 2

    /** [argb]: straight (not premultiplied) ARGB ints, row-major, as Bitmap.getPixels returns them. */
    fun toTensor(argb: IntArray, width: Int, height: Int, spec: PreprocessSpec): FloatArray {
        val planes: List<IntArray> = if (spec.gray) {
            listOf(luma(argb))
        } else {
            listOf(channel(argb, 16), channel(argb, 8), channel(argb, 0))
        }
        val plane = spec.height * spec.width
        val out = FloatArray(planes.size * plane)
        for (c in planes.indices) {
            val resized = resize(planes[c], width, height, spec.width, spec.height)
            normalize(resized, c, spec, out, c * plane)
        }
        return out
    }

    /** ITU-R 601-2 luma with Pillow's fixed-point weights (Convert.c L24). */
    fun luma(argb: IntArray): IntArray = IntArray(argb.size) { i ->
        val p = argb[i]
        ((p shr 16 and 0xFF) * 19595 + (p shr 8 and 0xFF) * 38470 + (p and 0xFF) * 7471 + 0x8000) shr 16
    }

    private fun channel(argb: IntArray, shift: Int): IntArray = IntArray(argb.size) { i -> argb[i] shr shift and 0xFF }

    /** Pillow 13 runs the vertical pass first when the height shrinks by over twice the width's pixels. */
    fun resize(src: IntArray, width: Int, height: Int, outW: Int, outH: Int): IntArray {
        var plane = src
        if (outH < height && height - outH > 2 * (width - outW)) {
            plane = vertical(plane, width, height, outH)
            if (outW != width) plane = horizontal(plane, width, outH, outW)
            return plane
        }
        if (outW != width) plane = horizontal(plane, width, height, outW)
        if (outH != height) plane = vertical(plane, outW, height, outH)
        return plane
    }

    private class Coefficients(val starts: IntArray, val counts: IntArray, val weights: Array<IntArray>)

    /** Resample.c precompute_coeffs + normalize_coeffs_8bpc for the triangle (bilinear) filter. */
    private fun coefficients(inSize: Int, outSize: Int): Coefficients {
        val scale = inSize.toDouble() / outSize
        val filterScale = if (scale < 1.0) 1.0 else scale
        val support = 1.0 * filterScale
        val ss = 1.0 / filterScale
        val starts = IntArray(outSize)
        val counts = IntArray(outSize)
        val weights = Array(outSize) { IntArray(0) }
        for (xx in 0 until outSize) {
            val center = (xx + 0.5) * scale
            val xmin = Math.max((center - support + 0.5).toInt(), 0)
            val xmax = Math.min((center + support + 0.5).toInt(), inSize) - xmin
            val k = DoubleArray(xmax)
            var total = 0.0
            for (x in 0 until xmax) {
                val t = Math.abs((x + xmin - center + 0.5) * ss)
                k[x] = if (t < 1.0) 1.0 - t else 0.0
                total += k[x]
            }
            val fixed = IntArray(xmax)
            for (x in 0 until xmax) {
                val w = if (total != 0.0) k[x] / total else k[x]
                fixed[x] = if (w < 0) (-0.5 + w * (1 shl PRECISION_BITS)).toInt() else (0.5 + w * (1 shl PRECISION_BITS)).toInt()
            }
            starts[xx] = xmin
            counts[xx] = xmax
            weights[xx] = fixed
        }
        return Coefficients(starts, counts, weights)
    }

    private fun clip8(acc: Int): Int = when {
        acc >= (1 shl PRECISION_BITS shl 8) -> 255
        acc <= 0 -> 0
        else -> acc shr PRECISION_BITS
    }

    private fun horizontal(src: IntArray, width: Int, height: Int, outW: Int): IntArray {
        val c = coefficients(width, outW)
        val out = IntArray(outW * height)
        for (y in 0 until height) {
            for (x in 0 until outW) {
                var acc = 1 shl (PRECISION_BITS - 1)
                for (i in 0 until c.counts[x]) acc += src[y * width + c.starts[x] + i] * c.weights[x][i]
                out[y * outW + x] = clip8(acc)
            }
        }
        return out
    }

    private fun vertical(src: IntArray, width: Int, height: Int, outH: Int): IntArray {
        val c = coefficients(height, outH)
        val out = IntArray(width * outH)
        for (y in 0 until outH) {
            for (x in 0 until width) {
                var acc = 1 shl (PRECISION_BITS - 1)
                for (i in 0 until c.counts[y]) acc += src[(c.starts[y] + i) * width + x] * c.weights[y][i]
                out[y * width + x] = clip8(acc)
            }
        }
        return out
    }

    /** float32 steps in numpy's order: p * scale, then 255 * scale - x, then (x - mean) / std. */
    private fun normalize(pixels: IntArray, c: Int, spec: PreprocessSpec, out: FloatArray, offset: Int) {
        val scale = spec.scale.toFloat()
        val top = (255.0 * spec.scale).toFloat()
        val mean = spec.mean[if (spec.mean.size == 1) 0 else c].toFloat()
        val std = spec.std[if (spec.std.size == 1) 0 else c].toFloat()
        for (i in pixels.indices) {
            var x = pixels[i].toFloat() * scale
            if (spec.invert) x = top - x
            out[offset + i] = (x - mean) / std
        }
    }
}
