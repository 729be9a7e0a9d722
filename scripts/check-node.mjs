// npm scripts run the Node pinned in devDependencies ("node": "24.x"). If this
// fails, the pinned package did not install: run `npm install` (its install
// script must be allowed, see "allowScripts" in package.json).
const major = Number(process.versions.node.split(".")[0])
if (major < 22) {
  console.error(
    `quasizero needs Node >= 22.19 (found ${process.version}). ` +
      "Run `npm install` so the pinned `node` devDependency provides Node 24, then use `npm test`."
  )
  process.exit(1)
}
