plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.edgekd.classify"
    compileSdk = 35
    defaultConfig {
        applicationId = "org.edgekd.classify"
        minSdk = 28  // ImageDecoder
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }  // the ABIs the ExecuTorch AAR ships
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
    androidResources { noCompress += "pte" }  // Module.load reads the file as written
}

dependencies {
    // ExecuTorch's Android API (org.pytorch.executorch Module / Tensor / EValue), XNNPACK included.
    // Keep its version in step with the executorch Python package that exported the .pte.
    implementation("org.pytorch:executorch-android:${property("executorchVersion")}")
    implementation("com.facebook.soloader:soloader:0.10.5")
    implementation("com.facebook.fbjni:fbjni:0.5.1")
    implementation("androidx.appcompat:appcompat:1.7.0")
    implementation("androidx.activity:activity-ktx:1.9.3")
}
