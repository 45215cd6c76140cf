# The capture addon (proxy/capture/native/): built by scripts/build-native.mjs during `npm install`,
# loaded by proxy/capture/original-dst.ts from build/Release/tracemesh_capture.node.
{
  "targets": [
    {
      "target_name": "tracemesh_capture",
      "sources": ["proxy/capture/native/capture.c"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
