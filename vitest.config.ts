import { fileURLToPath } from "node:url"
import { defineConfig } from "vitest/config"

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

export default defineConfig({
  // The package's own entry points resolve to the sources, as in tsconfig.json's paths.
  resolve: {
    alias: [
      { find: /^quasizero$/, replacement: src("index.ts") },
      { find: /^quasizero\/node$/, replacement: src("node/index.ts") },
      { find: /^quasizero\/testing$/, replacement: src("testing/index.ts") }
    ]
  },
  test: {
    include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
    reporters: ["default", "./test/support/summary-reporter.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks"
  }
})
