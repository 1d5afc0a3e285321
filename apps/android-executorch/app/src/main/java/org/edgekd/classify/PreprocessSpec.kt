package org.edgekd.classify

/**
 * The preprocessing spec every edgekd build writes beside its artifact as preprocess.json
 * (schema "edgekd.preprocess/1"; edgekd/data/preprocess.schema.json). SpecParser reads it.
 * Plain Kotlin, so Preprocess can be compiled and checked on a desktop JVM.
 */
class PreprocessSpec(
    val channels: Int,
    val height: Int,
    val width: Int,
    val gray: Boolean,
    val scale: Double,
    val mean: DoubleArray,
    val std: DoubleArray,
    val labels: List<String>,
    val invert: Boolean
)
