// Runs a MicroPython script on the official WebAssembly port (npm
// @micropython/micropython-webassembly-pyscript): a 32-bit VM with 4-byte words and 31-bit
// small ints, like the ESP32's Xtensa, so heap figures measured here are the board's.
//
//   node tools/mp32/run.mjs [--tree HOSTDIR[=VMDIR]]... [--heap BYTES] SCRIPT [ARG]...
//
// The port's filesystem lives in memory: every --tree is copied in before the script starts
// (default VMDIR /fw; the first tree goes first on sys.path). sys.argv is [SCRIPT, ARG...] as
// on the unix port. Exit status: 0, the script's SystemExit code, or 1 on an uncaught
// exception (its traceback on stderr).
//
// The port collects garbage only when control is back at the top level (it cannot scan the
// WebAssembly stack, so inside a call nothing is freed and the heap grows instead). A script
// that needs collections between its steps sets the global MP32_STEPS to a generator: this
// runner then resumes it from the top level again and again, with a collection before each
// step, until it is exhausted (tools/bench/device/bench_memory.py). What the port does differently from a board (no
// `machine`, no `asyncio.run`, a heap that grows on demand) is in docs/performance.md.
// Called from Python through lockerctl.mp32.
import fs from "fs";
import path from "path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs [--tree HOSTDIR[=VMDIR]]... ` +
                       `[--heap BYTES] SCRIPT [ARG]...\n`);
  process.exit(2);
}

const trees = [];
let heap = 1024 * 1024;          // the port's default first heap area; it grows past it
let argv = process.argv.slice(2);
while (argv.length && argv[0].startsWith("--")) {
  const opt = argv.shift();
  const val = argv.shift();
  if (val === undefined) usage(`${opt} needs a value`);
  if (opt === "--tree") {
    const [host, vm] = val.split("=");
    trees.push([host, vm || "/fw"]);
  } else if (opt === "--heap") {
    heap = parseInt(val, 10);
    if (!(heap > 0)) usage(`bad --heap ${val}`);
  } else {
    usage(`unknown option ${opt}`);
  }
}
if (!argv.length) usage("no script");
const [script, ...args] = argv;

function mkdirs(mp, dir) {
  let at = "";
  for (const part of dir.split("/").filter(Boolean)) {
    at += "/" + part;
    try { mp.FS.mkdir(at); } catch (e) { /* exists */ }
  }
}

function copyIn(mp, host, vm) {
  mkdirs(mp, vm);
  for (const name of fs.readdirSync(host)) {
    const src = path.join(host, name);
    const dst = vm + "/" + name;
    if (fs.statSync(src).isDirectory()) copyIn(mp, src, dst);
    else mp.FS.writeFile(dst, fs.readFileSync(src));
  }
}

let source;
try {
  source = fs.readFileSync(script, "utf8");
} catch (e) {
  usage(`cannot read ${script}: ${e.message}`);
}
const out = (line) => process.stdout.write(line + "\n");
const err = (line) => process.stderr.write(line + "\n");
const mp = await loadMicroPython({ heapsize: heap, stdout: out, stderr: err, linebuffer: true });
for (const [host, vm] of trees) copyIn(mp, host, vm);
mp.globals.set("_mp32_argv", JSON.stringify([script, ...args]));
mp.globals.set("_mp32_path", JSON.stringify(trees.map(([, vm]) => vm)));
let status = 0;
try {
  mp.runPython("import sys, json\nsys.argv[:] = json.loads(_mp32_argv)\n" +
               "sys.path[:0] = json.loads(_mp32_path)\ndel _mp32_argv, _mp32_path\n");
  mp.runPython(source);
  mp.runPython("_mp32_more = 'MP32_STEPS' in globals()");
  if (mp.globals.get("_mp32_more")) {
    mp.runPython("def _mp32_step():\n global _mp32_more\n try:\n  next(MP32_STEPS)\n" +
                 " except StopIteration:\n  _mp32_more = False\n");
    while (mp.globals.get("_mp32_more")) {
      mp.runPython("import gc\ngc.collect()");   // marks a collection pending ...
      mp.runPython("_mp32_step()");               // ... done on entering this call
    }
  }
} catch (e) {
  if (e.name !== "PythonError") {
    err(`run.mjs: ${e.name}: ${e.message}`);
    status = 1;
  } else if (e.type === "SystemExit") {
    const code = /SystemExit: (\d+)/.exec(e.message);
    status = code ? parseInt(code[1], 10) : 0;
  } else {
    err(e.message.trimEnd());
    status = 1;
  }
}
process.exitCode = status;
