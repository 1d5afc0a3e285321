package org.edgekd.classify

import android.content.Context
import android.graphics.Bitmap
import java.io.File
import org.pytorch.executorch.EValue
import org.pytorch.executorch.Module
import org.pytorch.executorch.Tensor

/**
 * The .pte from the android-executorch-xnnpack target (static batch 1) and the preprocess.json
 * written beside it, both shipped in the app's assets; run through ExecuTorch's Android API.
 */
class Classifier(context: Context) {
    companion object {
        const val MODEL_ASSET = "model.pte"  // edgekd writes model.int8.b1.pte: copy it under this name
        const val SPEC_ASSET = "preprocess.json"
    }

    data class Prediction(val label: String, val probability: Double)

    val spec: PreprocessSpec = context.assets.open(SPEC_ASSET).use { SpecParser.parse(it.readBytes().toString(Charsets.UTF_8)) }
    private val module: Module = Module.load(assetFile(context, MODEL_ASSET).absolutePath)

    /** A decoded photo or camera frame → the top-k classes (softmax of the logits). */
    fun classify(bitmap: Bitmap, k: Int = 5): List<Prediction> {
        val argb = IntArray(bitmap.width * bitmap.height)
        // getPixels returns straight (un-premultiplied) ARGB, the values Pillow reads from the file
        bitmap.getPixels(argb, 0, bitmap.width, 0, 0, bitmap.width, bitmap.height)
        val input = Preprocess.toTensor(argb, bitmap.width, bitmap.height, spec)
        val shape = longArrayOf(1, spec.channels.toLong(), spec.height.toLong(), spec.width.toLong())
        val outputs = module.forward(EValue.from(Tensor.fromBlob(input, shape)))
        val logits = outputs[0].toTensor().dataAsFloatArray
        val top = logits.maxOrNull() ?: 0f
        val exps = logits.map { Math.exp((it - top).toDouble()) }
        val total = exps.sum()
        return exps.withIndex()
            .map { Prediction(spec.labels[it.index], it.value / total) }
            .sortedByDescending { it.probability }
            .take(k)
    }

    /** Module.load needs a file path: assets are copied to the app's files folder once. */
    private fun assetFile(context: Context, name: String): File {
        val file = File(context.filesDir, name)
        context.assets.open(name).use { input -> file.outputStream().use { input.copyTo(it) } }
        return file
    }
}
