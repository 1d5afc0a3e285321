import SwiftUI

@main
struct EdgeKDClassifierApp: App {
    var body: some Scene {
        WindowGroup { ContentView() }
    }
}
