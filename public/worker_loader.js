// The analysis worker's entry point. It starts one of two builds of the same worker: `?cpu` in
// its address starts the CPU-only build (worker_cpu.js: a quarter of the download, what the
// page starts first), otherwise the build with WebGPU (worker.js). Before the wasm starts, it
// wraps WebGPU's device request
// so the device the networks run on is watched: when it is lost (a driver reset, the GPU
// removed, or destroyed by a test), the page is told and goes on with a worker on the CPU.
//
// Fault injection for the tests, read from this script's address (the page passes its own
// query string on); absent in normal use:
//   lose-gpu-after=N   destroy the device once N cells are answered (lost mid-batch)
//   fail-gpu-device    the device request fails (device creation failing)
//   fail-gpu-adapter   no adapter is offered (a machine without a usable GPU)
const params = new URLSearchParams(self.location.search);

// Once the device is lost, this worker says nothing more: its failures would otherwise reach
// the page as files refused, when they are the GPU's. The page replaces the worker and sends
// the unanswered files to a new one on the CPU.
const post = self.postMessage.bind(self);
let silenced = false;
let device = null;
let destroyedByTest = false;
const loseAfter = params.get('lose-gpu-after');
let answered = 0;
self.postMessage = (...args) => {
  if (silenced) return;
  post(...args);
  const json = Array.isArray(args[0]) ? args[0][0] : '';
  if (loseAfter !== null && device && typeof json === 'string' && json.startsWith('{"Analysed"')
      && ++answered === Number(loseAfter)) {
    destroyedByTest = true;
    device.destroy();
    deviceLost('the device was destroyed (lose-gpu-after in the page address)');
  }
};
const deviceLost = (reason) => {
  if (silenced) return;
  silenced = true;
  post([JSON.stringify({ DeviceLost: { reason } })]);
};

if (self.navigator.gpu && params.has('fail-gpu-adapter')) {
  self.navigator.gpu.requestAdapter = async () => null;
}
if (self.GPUAdapter) {
  const requestDevice = self.GPUAdapter.prototype.requestDevice;
  self.GPUAdapter.prototype.requestDevice = async function (...args) {
    if (params.has('fail-gpu-device')) {
      throw new Error('the device request failed (fail-gpu-device in the page address)');
    }
    device = await requestDevice.apply(this, args);
    device.lost.then((info) => {
      // The worker never destroys its own device: "destroyed" is a test's doing.
      if (info.reason !== 'destroyed' || destroyedByTest) {
        deviceLost(info.message || info.reason || 'no reason given');
      }
    });
    return device;
  };
}

// Only the build this worker runs is downloaded.
const { default: init } = await import(params.has('cpu') ? './worker_cpu.js' : './worker.js');
await init();
