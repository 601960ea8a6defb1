// The onebit browser demo: two .onebit models (made by `npm run demo:models`) on the `onebit/web`
// bundle (dist/web/onebit.js). Plain ES modules, no build step. `window.__onebit` exposes the
// state (last input tensor, logits, backend) for test/web_e2e.test.ts and for the curious.

const params = new URLSearchParams(location.search);
const BACKEND = params.get('backend') || 'auto';
const TIMED_RUNS = 5;
const MODELS = {
  mnist: { url: 'models/mnist.onebit', title: 'MNIST' },
  cifar: { url: 'models/cifar10-resnet20.onebit', title: 'CIFAR-10' },
};

/** Everything the page knows, for tests and the console. */
const state = {
  ready: false,
  requestedBackend: BACKEND,
  crossOriginIsolated: self.crossOriginIsolated === true,
  backend: null,
  mnist: { model: null, error: null, count: 0, lastInput: null, lastLogits: null, top: null, latencyMs: null, busy: false },
  cifar: { model: null, error: null, count: 0, lastInput: null, lastLogits: null, top: null, latencyMs: null, source: null, busy: false },
};
window.__onebit = state;

const $ = (id) => document.getElementById(id);

// ---------- formatting ----------

function fmtBytes(n) {
  if (n == null) return '?';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

function fmtMs(ms) {
  return ms < 1 ? `${ms.toFixed(3)} ms` : ms < 10 ? `${ms.toFixed(2)} ms` : `${ms.toFixed(1)} ms`;
}

function setStatus(panel, text, kind = '') {
  const el = $(`${panel}-status`);
  el.textContent = text;
  el.className = `status ${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
}

function setStat(panel, key, text) {
  $(`${panel}-stats`).querySelector(`[data-stat="${key}"]`).textContent = text;
}

function showModelInfo(panel, m) {
  const { fileBytes, floatBytes } = m.size;
  setStat(panel, 'size', fileBytes
    ? `${fmtBytes(fileBytes)} .onebit vs ${fmtBytes(floatBytes)} float32 (${(floatBytes / fileBytes).toFixed(1)}× smaller)`
    : `${fmtBytes(floatBytes)} as float32`);
  const b = m.backend;
  const isolated = b.crossOriginIsolated ?? state.crossOriginIsolated;
  setStat(panel, 'backend', `${b.name} · ${b.threads} thread${b.threads === 1 ? '' : 's'} · ${isolated ? 'cross-origin isolated' : 'not cross-origin isolated'}`);
  const md = m.metadata ?? {};
  const cfg = md.config ?? {};
  const acc = typeof md.testAcc === 'number' ? `${(100 * md.testAcc).toFixed(2)} % on the test set` : 'not recorded';
  const how = [cfg.arch, cfg.method, md.epoch != null ? `${md.epoch} epoch${md.epoch === 1 ? '' : 's'}` : null].filter(Boolean).join(', ');
  setStat(panel, 'accuracy', how ? `${acc} (${how})` : acc);
}

function showTopK(panel, top) {
  const ol = $(`${panel}-topk`);
  ol.replaceChildren(...top.map((t, i) => {
    const li = document.createElement('li');
    if (i === 0) li.className = 'best';
    const label = document.createElement('span');
    label.className = 'label';
    label.textContent = t.label;
    const bar = document.createElement('span');
    bar.className = 'bar';
    bar.setAttribute('aria-hidden', 'true');
    const fill = document.createElement('span');
    fill.style.width = `${Math.max(0, Math.min(100, 100 * t.probability)).toFixed(1)}%`;
    bar.append(fill);
    const pct = document.createElement('span');
    pct.className = 'pct';
    pct.textContent = `${(100 * t.probability).toFixed(1)} %`;
    li.append(label, bar, pct);
    return li;
  }));
}

// ---------- inference ----------

/** Predict one input; latency = median of TIMED_RUNS runs after one warm-up run. */
function classify(lib, panel, m, x) {
  const shape = [1, ...m.inputShape];
  let logits = m.predict(x, shape); // warm-up
  const times = [];
  for (let i = 0; i < TIMED_RUNS; i++) {
    const t0 = performance.now();
    logits = m.predict(x, shape);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const latencyMs = times[Math.floor(times.length / 2)];
  const top = lib.topK(logits, Math.min(5, m.classes), m.labels);
  const s = state[panel];
  Object.assign(s, { lastInput: x, lastLogits: logits, top, latencyMs, count: s.count + 1 });
  showTopK(panel, top);
  setStat(panel, 'latency', `${fmtMs(latencyMs)} per image (median of ${TIMED_RUNS}, batch 1)`);
  setStatus(panel, `Top-1: ${top[0].label} (${(100 * top[0].probability).toFixed(1)} %)`, 'ok');
  return top;
}

async function fetchModel(lib, panel) {
  const { url } = MODELS[panel];
  let res;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new Error(`Could not fetch ${url}: ${e.message}. Is the demo server running?`);
  }
  if (!res.ok) {
    throw new Error(`Could not load ${url}: HTTP ${res.status} ${res.statusText}.` +
      (res.status === 404 ? ' Make the demo models first: npm run demo:models' : ''));
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  try {
    return await lib.loadModel(bytes, { backend: BACKEND });
  } catch (e) {
    throw new Error(`${url} is not a usable .onebit model: ${e.message}`);
  }
}

function failPanel(panel, message) {
  state[panel].error = message;
  setStatus(panel, message, 'error');
  $(panel).classList.add('failed');
  for (const el of $(panel).querySelectorAll('button, input')) el.disabled = true;
}

// ---------- MNIST: drawing ----------

function setupMnist(lib, m) {
  const canvas = $('mnist-canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const seen = $('mnist-seen');
  const seenCtx = seen.getContext('2d', { willReadFrequently: true });
  const [, H, W] = m.inputShape;
  seen.width = W;
  seen.height = H;
  let drawing = false, last = null, pointer = null, dirty = false;

  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    seenCtx.fillStyle = '#000';
    seenCtx.fillRect(0, 0, W, H);
    dirty = false;
    $('mnist-topk').replaceChildren();
    setStatus('mnist', 'Draw a digit (0–9) in the black box.');
  };

  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    return { x: ((e.clientX - r.left) * canvas.width) / r.width, y: ((e.clientY - r.top) * canvas.height) / r.height };
  };
  const line = (a, b) => {
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 20;
    ctx.lineCap = 'round';
    ctx.lineJoin = 'round';
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.lineTo(b.x, b.y);
    ctx.stroke();
  };

  canvas.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 && e.pointerType === 'mouse') return;
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    drawing = true;
    pointer = e.pointerId;
    last = pos(e);
    line(last, last);
    dirty = true;
  });
  canvas.addEventListener('pointermove', (e) => {
    if (!drawing || e.pointerId !== pointer) return;
    e.preventDefault();
    const events = typeof e.getCoalescedEvents === 'function' ? e.getCoalescedEvents() : [];
    for (const ev of events.length ? events : [e]) {
      const p = pos(ev);
      line(last, p);
      last = p;
    }
  });
  const end = (e) => {
    if (!drawing || e.pointerId !== pointer) return;
    drawing = false;
    pointer = null;
    predictDrawing();
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', end);
  canvas.addEventListener('keydown', (e) => {
    if (e.key === 'Delete' || e.key === 'Backspace' || e.key === 'Escape') {
      e.preventDefault();
      clear();
    }
  });
  $('mnist-clear').addEventListener('click', clear);

  /**
   * MNIST's own preparation: the drawing's bounding box scaled to fit 20×20 (aspect kept) and placed
   * by its centre of mass at the centre of the 28×28 input (high-quality canvas downscaling), then
   * `imageToInput` (gray, the model's normalization).
   */
  function predictDrawing() {
    if (!dirty) return;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    let x0 = canvas.width, y0 = canvas.height, x1 = -1, y1 = -1, mass = 0, mx = 0, my = 0;
    for (let y = 0; y < canvas.height; y++) {
      for (let x = 0; x < canvas.width; x++) {
        const v = data[(y * canvas.width + x) * 4];
        if (v === 0) continue;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
        mass += v;
        mx += v * (x + 0.5);
        my += v * (y + 0.5);
      }
    }
    if (x1 < 0) return clear();
    const bw = x1 - x0 + 1, bh = y1 - y0 + 1;
    const box = (20 / 28) * Math.min(W, H);
    const s = box / Math.max(bw, bh);
    const dw = bw * s, dh = bh * s;
    const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
    const dx = clamp(W / 2 - (mx / mass - x0) * s, 0, W - dw), dy = clamp(H / 2 - (my / mass - y0) * s, 0, H - dh);
    seenCtx.fillStyle = '#000';
    seenCtx.fillRect(0, 0, W, H);
    seenCtx.imageSmoothingEnabled = true;
    seenCtx.imageSmoothingQuality = 'high';
    seenCtx.drawImage(canvas, x0, y0, bw, bh, dx, dy, dw, dh);
    const small = seenCtx.getImageData(0, 0, W, H);
    try {
      const x = lib.imageToInput(small.data, W, H, m);
      classify(lib, 'mnist', m, x);
    } catch (e) {
      setStatus('mnist', `Prediction failed: ${e.message}`, 'error');
    }
  }

  clear();
}

// ---------- CIFAR-10: images ----------

function setupCifar(lib, m) {
  const [, H, W] = m.inputShape;
  const input = $('cifar-file');
  const drop = $('cifar-drop');
  const preview = $('cifar-preview');
  let previewUrl = null;
  setStatus('cifar', 'Drop or choose an image.');

  /**
   * The image's RGBA pixels for `imageToInput`: as decoded (no colour-space conversion, no
   * premultiplication) when it already has the model's size — exactly what `onebit predict` does with
   * a PNG — else its centre square, downscaled with the canvas's high-quality filter.
   */
  async function pixelsOf(blob) {
    const bmp = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
    try {
      const same = bmp.width === W && bmp.height === H;
      const c = document.createElement('canvas');
      c.width = W;
      c.height = H;
      const g = c.getContext('2d', { willReadFrequently: true });
      if (same) {
        g.drawImage(bmp, 0, 0);
      } else {
        const side = Math.min(bmp.width, bmp.height);
        g.imageSmoothingEnabled = true;
        g.imageSmoothingQuality = 'high';
        g.drawImage(bmp, (bmp.width - side) / 2, (bmp.height - side) / 2, side, side, 0, 0, W, H);
      }
      return { data: g.getImageData(0, 0, W, H).data, width: bmp.width, height: bmp.height };
    } finally {
      bmp.close();
    }
  }

  async function handle(blob, name) {
    if (!blob) return;
    if (blob.type && !blob.type.startsWith('image/')) {
      setStatus('cifar', `${name} is not an image (${blob.type}). Choose a PNG, JPEG, GIF or WebP file.`, 'error');
      return;
    }
    state.cifar.busy = true;
    try {
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = URL.createObjectURL(blob);
      let px;
      try {
        px = await pixelsOf(blob);
      } catch (e) {
        setStatus('cifar', `Could not decode ${name}: ${e.message || e}. Choose a PNG, JPEG, GIF or WebP image.`, 'error');
        return;
      }
      preview.src = previewUrl;
      preview.alt = `The image to classify: ${name}`;
      preview.hidden = false;
      preview.classList.toggle('pixelated', Math.max(px.width, px.height) <= 64);
      $('cifar-drop-text').textContent = `${name} (${px.width}×${px.height}) — drop or choose another`;
      const x = lib.imageToInput(px.data, W, H, m);
      state.cifar.source = name;
      classify(lib, 'cifar', m, x);
    } catch (e) {
      setStatus('cifar', `Prediction failed: ${e.message}`, 'error');
    } finally {
      state.cifar.busy = false;
    }
  }

  input.addEventListener('change', () => {
    const f = input.files && input.files[0];
    if (f) handle(f, f.name);
  });
  for (const ev of ['dragenter', 'dragover']) {
    drop.addEventListener(ev, (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
  }
  for (const ev of ['dragleave', 'dragend']) drop.addEventListener(ev, () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const f = e.dataTransfer && e.dataTransfer.files[0];
    if (f) handle(f, f.name);
    else setStatus('cifar', 'Nothing to classify in what was dropped: drop an image file.', 'error');
  });

  // Sample images (written by `npm run demo:models` when the CIFAR-10 test set was at hand).
  fetch('models/samples/samples.json').then((r) => (r.ok ? r.json() : [])).then((list) => {
    if (!Array.isArray(list) || list.length === 0) return;
    const box = $('cifar-samples');
    box.querySelector('.sample-list').replaceChildren(...list.map((s) => {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'sample';
      b.title = `${s.label} (CIFAR-10 test image ${s.index})`;
      b.setAttribute('aria-label', `Classify a CIFAR-10 test image of a ${s.label}`);
      const img = document.createElement('img');
      img.src = `models/${s.file}`;
      img.alt = '';
      b.append(img);
      b.addEventListener('click', async () => {
        const res = await fetch(`models/${s.file}`);
        if (!res.ok) return setStatus('cifar', `Could not load the sample ${s.file}: HTTP ${res.status}.`, 'error');
        handle(await res.blob(), s.file.replace(/^samples\//, ''));
      });
      return b;
    }));
    box.hidden = false;
  }).catch(() => { /* no samples: fine */ });
}

// ---------- start ----------

async function main() {
  let lib;
  try {
    lib = await import('./dist/web/onebit.js');
  } catch (e) {
    const msg = `The onebit web bundle (dist/web/onebit.js) did not load: ${e.message}. Build it with: node scripts/build-web.mjs`;
    for (const p of ['mnist', 'cifar']) failPanel(p, msg);
    $('env').textContent = '';
    state.ready = true;
    return;
  }
  await Promise.all(['mnist', 'cifar'].map(async (panel) => {
    try {
      const m = await fetchModel(lib, panel);
      state[panel].model = m;
      state.backend ??= { name: m.backend.name, threads: m.backend.threads, crossOriginIsolated: m.backend.crossOriginIsolated ?? state.crossOriginIsolated };
      showModelInfo(panel, m);
      (panel === 'mnist' ? setupMnist : setupCifar)(lib, m);
    } catch (e) {
      failPanel(panel, e.message);
    }
  }));
  const b = state.backend;
  $('env').textContent = b
    ? `Kernels: ${b.name}, ${b.threads} thread${b.threads === 1 ? '' : 's'}; ${b.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated'}.`
    : '';
  state.ready = true;
}

main();
