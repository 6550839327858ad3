// The peer benchmark page, served beside the app's own build (cargo xtask bench): in one
// browser session it times the app's two networks on Burn (the app's own worker, which
// answers `TimeNetworks` with forward passes + readback of each network alone) and the same
// architectures exported to ONNX (bench/peer/make_onnx.py) on onnxruntime-web, on its wasm
// provider (one thread, as Burn's flex in wasm) or its WebGPU provider. The harness calls
// window.peer.* over WebDriver and alternates the two engines run by run.

const log = (line) => { document.getElementById("log").textContent += line + "\n"; };
const now = () => performance.now();

let ort = null;
const sessions = {};

async function loadOrt(provider) {
  // The WebGPU build of onnxruntime-web carries both providers; the wasm build only wasm.
  ort = provider === "webgpu"
    ? await import("./ort/ort.webgpu.min.mjs")
    : await import("./ort/ort.wasm.min.mjs");
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = new URL("./ort/", location.href).href;
}

// Start the app's worker (its own loader, with the page's query: `?cpu` forces flex) and
// wait for it to say it is ready.
function startBurn(cpu) {
  return new Promise((resolve, reject) => {
    const t0 = now();
    const worker = new Worker(`./worker_loader.js${cpu ? "?cpu" : ""}`, { type: "module" });
    const pending = [];
    worker.onmessage = (e) => {
      const message = JSON.parse(e.data[0]);
      if (message.Ready) {
        resolve({ worker, pending, ready_ms: now() - t0, engine: message.Ready });
      } else if (message.Fatal) {
        reject(new Error(message.Fatal.message));
      } else if (message.NetworkTimes) {
        pending.shift()(message.NetworkTimes);
      }
    };
    worker.onerror = (e) => reject(new Error(e.message || "worker error"));
  });
}

let burn = null;

window.peer = {
  // Load Burn (the app's worker) and onnxruntime-web with one provider and the graphs of
  // the given batch sizes; returns the load times.
  async load(provider, batches) {
    const out = {};
    let t = now();
    burn = await startBurn(provider !== "webgpu");
    out.burn_ready_ms = burn.ready_ms;
    out.burn_device = burn.engine.device;
    t = now();
    await loadOrt(provider);
    out.ort_import_ms = now() - t;
    const options = { executionProviders: [provider === "webgpu" ? "webgpu" : "wasm"], graphOptimizationLevel: "all" };
    for (const batch of batches) {
      for (const net of ["attribute_net", "seg_net"]) {
        const key = `${net}_b${batch}`;
        t = now();
        sessions[key] = await ort.InferenceSession.create(`./graphs/${key}.onnx`, options);
        out[`ort_load_${key}_ms`] = now() - t;
      }
    }
    log(JSON.stringify(out));
    return out;
  },

  // One run of a network on onnxruntime-web, output read back to the CPU.
  async ort(net, batch) {
    const session = sessions[`${net}_b${batch}`];
    const side = net === "attribute_net" ? 160 : 112;
    const channels = net === "attribute_net" ? 3 : 4;
    const input = new ort.Tensor("float32", new Float32Array(batch * channels * side * side).fill(0.5), [batch, channels, side, side]);
    const t = now();
    const result = await session.run({ [session.inputNames[0]]: input });
    const output = result[session.outputNames[0]];
    await output.getData();
    return now() - t;
  },

  // One run of each network on Burn in the app's worker (forward + readback, timed there).
  burn(batch) {
    return new Promise((resolve) => {
      burn.pending.push(resolve);
      burn.worker.postMessage([JSON.stringify({ TimeNetworks: { batch } })]);
    });
  },
};
window.peerReady = true;
