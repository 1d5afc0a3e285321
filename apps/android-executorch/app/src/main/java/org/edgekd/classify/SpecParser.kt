package org.edgekd.classify

import org.json.JSONArray
import org.json.JSONObject

/**
 * Parses preprocess.json with Android's org.json, reading exactly the schema's keys; an unknown
 * key, another schema version or a layout other than NCHW is refused, as the SDK does.
 */
object SpecParser {
    const val SCHEMA = "edgekd.preprocess/1"
    val KEYS = setOf("schema", "input_shape", "layout", "color", "scale", "mean", "std", "labels", "invert")

    fun parse(text: String): PreprocessSpec {
        val json = JSONObject(text)
        val unknown = json.keys().asSequence().filter { it !in KEYS }.toList()
        require(unknown.isEmpty()) { "preprocess.json: unknown keys $unknown" }
        require(json.getString("schema") == SCHEMA) { "preprocess.json: schema is not $SCHEMA" }
        require(json.getString("layout") == "NCHW") { "preprocess.json: layout must be NCHW" }
        val shape = json.getJSONArray("input_shape")
        val color = json.getString("color")
        val channels = shape.getInt(0)
        require((color == "gray" && channels == 1) || (color == "rgb" && channels == 3)) {
            "preprocess.json: this app handles gray (1 channel) or rgb (3 channels), got $color with $channels"
        }
        val labels = json.getJSONArray("labels")
        return PreprocessSpec(
            channels = channels,
            height = shape.getInt(1),
            width = shape.getInt(2),
            gray = color == "gray",
            scale = json.getDouble("scale"),
            mean = doubles(json.getJSONArray("mean")),
            std = doubles(json.getJSONArray("std")),
            labels = List(labels.length()) { labels.getString(it) },
            invert = json.getBoolean("invert")
        )
    }

    private fun doubles(array: JSONArray) = DoubleArray(array.length()) { array.getDouble(it) }
}
