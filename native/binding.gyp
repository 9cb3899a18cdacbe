{
  "variables": { "facegan_onednn%": 0 },
  "targets": [
    {
      "target_name": "facegan_native",
      "sources": ["src/addon.cc", "src/conv.cc", "src/conv_dnnl.cc", "src/elementwise.cc", "src/parallel.cc"],
      "include_dirs": ["/usr/include/x86_64-linux-gnu/openblas-pthread", "/usr/include/openblas"],
      "libraries": ["-lopenblas", "-ldl"],
      "cflags_cc": ["-O3", "-fno-math-errno", "-fno-trapping-math", "-std=c++17", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-O2"],
      "defines": ["NAPI_VERSION=8"],
      "conditions": [
        ["facegan_onednn==1", { "defines": ["FACEGAN_DNNL"], "libraries": ["-ldnnl", "-lgomp"] }]
      ]
    }
  ]
}
