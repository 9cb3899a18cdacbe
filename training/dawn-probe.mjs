// Asks Dawn (the `webgpu` package) for a GPU adapter and prints what it found
// as one JSON line: {"adapter": {...} | null} or {"error": "..."}.
// training/node-backends.ts runs this in a child process, so that whatever
// Vulkan drivers and layers print to stderr while Dawn probes them stays out
// of the trainer's output, and a crash in a driver cannot take the trainer down.
let result;
try {
  const { create } = await import('webgpu');
  const adapter = await create([]).requestAdapter({ powerPreference: 'high-performance' });
  const info = adapter?.info ?? {};
  result = {
    adapter: adapter && {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
      isFallbackAdapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    },
  };
} catch (err) {
  result = { error: err instanceof Error ? err.message : String(err) };
}
process.stdout.write(`${JSON.stringify(result)}\n`);
// Dawn keeps the event loop alive.
process.exit(0);
