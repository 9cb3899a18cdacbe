/// <reference types="astro/client" />
// Vite's import.meta.env / import.meta.glob and `?url` imports, without depending on the
// generated .astro/types.d.ts (absent on a fresh checkout until `astro sync` or a build).
