import PhotosUI
import SwiftUI

/// Pick a photo or take a camera frame; shows the top-5 classes and the on-device latency.
struct ContentView: View {
    @State private var classifier: Result<Classifier, Error> = Result { try Classifier() }
    @State private var pickerItem: PhotosPickerItem?
    @State private var image: UIImage?
    @State private var showCamera = false
    @State private var predictions: [Classifier.Prediction] = []
    @State private var latencyMs: Double?
    @State private var message: String?

    var body: some View {
        NavigationStack {
            VStack(spacing: 16) {
                if let image { Image(uiImage: image).resizable().scaledToFit().frame(maxHeight: 240) }
                HStack {
                    PhotosPicker("Pick a photo", selection: $pickerItem, matching: .images)
                    Button("Camera") { showCamera = true }
                        .disabled(!UIImagePickerController.isSourceTypeAvailable(.camera))
                }
                List(predictions) { p in
                    HStack { Text(p.label); Spacer(); Text(String(format: "%.4f", p.probability)).monospacedDigit() }
                }
                if let latencyMs { Text(String(format: "%.2f ms on device (preprocess + Core ML)", latencyMs)) }
                if let message { Text(message).foregroundStyle(.red) }
            }
            .padding()
            .navigationTitle("edgekd · iphone-coreml")
        }
        .sheet(isPresented: $showCamera) { CameraPicker(image: $image) }
        .onChange(of: pickerItem) { _, item in Task { await load(item) } }
        .onChange(of: image) { _, newImage in if let newImage { classify(newImage) } }
        .onAppear { if case let .failure(error) = classifier { message = "\(error)" } }
    }

    private func load(_ item: PhotosPickerItem?) async {
        guard let data = try? await item?.loadTransferable(type: Data.self), let picked = UIImage(data: data) else { return }
        image = picked
    }

    private func classify(_ image: UIImage) {
        guard case let .success(model) = classifier else { return }
        guard let decoded = ImageDecoding.rgba(image) else { message = "cannot read the image's pixels"; return }
        let start = CFAbsoluteTimeGetCurrent()
        do {
            predictions = try model.classify(rgba: decoded.pixels, width: decoded.width, height: decoded.height)
            latencyMs = (CFAbsoluteTimeGetCurrent() - start) * 1000
            message = nil
        } catch {
            message = "\(error)"
        }
    }
}
