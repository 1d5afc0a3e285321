package org.edgekd.classify

import android.graphics.Bitmap
import android.graphics.ImageDecoder
import android.net.Uri
import android.os.Bundle
import android.os.SystemClock
import android.widget.Button
import android.widget.ImageView
import android.widget.LinearLayout
import android.widget.TextView
import androidx.activity.result.PickVisualMediaRequest
import androidx.activity.result.contract.ActivityResultContracts
import androidx.appcompat.app.AppCompatActivity

/** Pick a photo or take a camera frame; shows the top-5 classes and the on-device latency. */
class MainActivity : AppCompatActivity() {
    private lateinit var classifier: Classifier
    private lateinit var preview: ImageView
    private lateinit var results: TextView

    private val pickPhoto = registerForActivityResult(ActivityResultContracts.PickVisualMedia()) { uri: Uri? ->
        uri?.let { classify(decode(it)) }
    }
    private val takeFrame = registerForActivityResult(ActivityResultContracts.TakePicturePreview()) { bitmap: Bitmap? ->
        bitmap?.let { classify(it) }
    }

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val layout = LinearLayout(this).apply { orientation = LinearLayout.VERTICAL; setPadding(32, 32, 32, 32) }
        val pick = Button(this).apply { text = "Pick a photo" }
        val camera = Button(this).apply { text = "Camera" }
        preview = ImageView(this).apply { adjustViewBounds = true; maxHeight = 600 }
        results = TextView(this).apply { textSize = 16f }
        listOf(pick, camera, preview, results).forEach { layout.addView(it) }
        setContentView(layout)
        title = "edgekd · android-executorch-xnnpack"

        classifier = try {
            Classifier(this)
        } catch (e: Exception) {
            results.text = "Cannot load the model: ${e.message}"
            return
        }
        pick.setOnClickListener {
            pickPhoto.launch(PickVisualMediaRequest(ActivityResultContracts.PickVisualMedia.ImageOnly))
        }
        camera.setOnClickListener { takeFrame.launch(null) }
    }

    /** Software ARGB_8888 bitmap: getPixels must see the decoded pixel values, upright. */
    private fun decode(uri: Uri): Bitmap {
        val source = ImageDecoder.createSource(contentResolver, uri)
        return ImageDecoder.decodeBitmap(source) { decoder, _, _ ->
            decoder.allocator = ImageDecoder.ALLOCATOR_SOFTWARE
        }.copy(Bitmap.Config.ARGB_8888, false)
    }

    private fun classify(bitmap: Bitmap) {
        preview.setImageBitmap(bitmap)
        val start = SystemClock.elapsedRealtimeNanos()
        val top = classifier.classify(bitmap)
        val ms = (SystemClock.elapsedRealtimeNanos() - start) / 1e6
        results.text = top.joinToString("\n") { "%-12s %.4f".format(it.label, it.probability) } +
            "\n\n%.2f ms on device (preprocess + ExecuTorch)".format(ms)
    }
}
