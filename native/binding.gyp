{
  # Sources and CUDA link flags come from scripts/gyp.mjs so that adding a file under
  # src/ needs no edit here. build.mjs compiles the .cu files first (when nvcc exists).
  "targets": [
    {
      "target_name": "calib",
      "sources": ["<!@(node scripts/gyp.mjs sources)"],
      "include_dirs": ["<!(node scripts/gyp.mjs napi-include)", "include"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "CALIB_WITH_CUDA=<!(node scripts/gyp.mjs cuda)"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "<!@(node scripts/gyp.mjs march)"],
      "libraries": ["<!@(node scripts/gyp.mjs libs)"]
    }
  ]
}
