// Vite builds the dashboard into web/dist, which the dashboard server serves (never committed).
import { defineConfig } from "vite";

export default defineConfig({
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 150 },
});
