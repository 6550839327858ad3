// Starts the analysis worker as soon as the HTML is parsed, while the page's own wasm is
// still downloading and compiling: the worker's download, compilation and model loading then
// overlap the page's instead of following it (issue 17: time to the first prediction).
// The page adopts this worker (`WorkerClient::start`) when it asks for the same one: the
// CPU-only build, which every page starts first. Until then its messages are held here, as a
// message posted to a worker object with no handler would be lost.
(() => {
  if (!self.Worker) return;
  const params = new URLSearchParams(self.location.search);
  params.set('cpu', '');
  const url = './worker_loader.js?' + params.toString();
  try {
    const worker = new Worker(url, { type: 'module' });
    const held = [];
    worker.onmessage = (event) => held.push(event);
    worker.onerror = (event) => held.push(event);
    self.__wbcEarlyWorker = { worker, url, held };
  } catch (e) {
    // The page starts its own worker and reports what goes wrong then.
  }
})();
