// Builds the static app into build/webapp (or the folder given as the first argument):
// app.js bundled with esbuild (the npm packages inside, no CDN), the shell files copied, and
// sw.js told the file list and a cache name that changes with the content.
import { build } from "esbuild";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(process.argv[2] || join(here, "..", "..", "build", "webapp"));
const STATIC = ["index.html", "app.css", "icon.svg", "manifest.webmanifest"];

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src", "app.js")], bundle: true, format: "esm", target: "es2022",
  minify: true, sourcemap: false, outfile: join(out, "app.js"), logLevel: "warning",
});
for (const f of STATIC) copyFileSync(join(here, "src", f), join(out, f));
const hash = createHash("sha256");
for (const f of ["app.js", ...STATIC]) hash.update(readFileSync(join(out, f)));
const shell = ["./", "app.js", ...STATIC];
const sw = readFileSync(join(here, "src", "sw.js"), "utf8")
  .replace("__CACHE__", "locker-" + hash.digest("hex").slice(0, 16))
  .replace("__SHELL__", JSON.stringify(shell));
writeFileSync(join(out, "sw.js"), sw);
console.log(`webapp built in ${out}: ${readFileSync(join(out, "app.js")).length} bytes of JS`);
