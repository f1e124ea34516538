// The playground page: what the server offers, the form, and the wiring between the parts
// (api.js: requests and job events; jobs.js: a card per job; gallery.js: kept results;
// mask.js: the inpainting mask). Every generation is a job (POST /v1/jobs).

import { apiEvents, getJson, keyStore, postJson } from "./api.js";
import { Gallery, pendingJobs } from "./gallery.js";
import { JobCard } from "./jobs.js";
import { MaskPainter } from "./mask.js";

const $ = (id) => document.getElementById(id);
const form = $("generate-form");
const MAX_SEED = Number.MAX_SAFE_INTEGER;
// API field (an error's `param`) -> the control that sets it.
const CONTROLS = {
  prompt: "prompt",
  negative_prompt: "negative-prompt",
  steps: "steps",
  guidance_scale: "guidance",
  n: "count",
  seed: "seed",
  size: "size",
  width: "width",
  height: "height",
  image: "image-file",
  mask: "image-file",
  strength: "strength",
  lora: "lora-list",
};

const state = { caps: null, input: null, cards: new Map() };
const mask = new MaskPainter($("mask-canvas"));
const gallery = new Gallery($("gallery"), $("gallery-empty"), $("gallery-template"), {
  reuse: useSettings,
  edit: editImage,
});

wire();
start();

// ---- connecting ----------------------------------------------------------------------------
async function start() {
  let settings;
  try {
    settings = await getJson("playground.json");
  } catch (err) {
    showBanner(`The server did not answer: ${err.message}`);
    return;
  }
  $("key-toggle").hidden = !settings.auth_required;
  if (settings.auth_required && !keyStore.get()) {
    askForKey("This server needs an API key. It is kept in this browser only (localStorage).");
    return;
  }
  await connect();
}

async function connect() {
  let caps, models;
  try {
    [caps, models] = await Promise.all([getJson("v1/capabilities"), getJson("v1/models")]);
  } catch (err) {
    if (err.status !== 401) showBanner(`Could not read what the server offers: ${err.message}`);
    return; // a 401 has opened the key panel
  }
  state.caps = caps;
  hideBanner();
  $("key-panel").hidden = true;
  $("key-toggle").setAttribute("aria-expanded", "false");
  describeServer(caps, models);
  configureControls(caps);
  await listAdapters(caps);
  gallery.render();
  for (const job of pendingJobs.all()) if (!state.cards.has(job.id)) track(job);
}

function askForKey(message) {
  $("key-message").textContent = message;
  $("key-panel").hidden = false;
  $("key-toggle").hidden = false;
  $("key-toggle").setAttribute("aria-expanded", "true");
  $("api-key").focus();
}

function describeServer(caps, models) {
  const model = models.data[0] || { id: caps.model };
  const limits = caps.limits;
  $("server-summary").textContent = `${caps.backend} · ${model.id}`;
  const yesNo = (value) => (value ? "yes" : "no");
  const facts = [
    ["Backend", caps.backend],
    ["Model", model.id],
    ["Tasks", caps.tasks.join(", ") || "none"],
    ["Preset sizes", limits.sizes.join(", ") || "none"],
    ["Largest side", limits.max_width ? `${limits.max_width} × ${limits.max_height}` : "no limit"],
    ["Most pixels", limits.max_pixels.toLocaleString()],
    ["Most images per job", limits.max_n],
    ["Queue", `${limits.max_queue} jobs`],
    ["Masks", yesNo(caps.features.mask)],
    ["Previews", yesNo(caps.features.previews)],
    ["Cancel while running", yesNo(caps.features.cancel_running)],
    ["Keys required", yesNo(caps.auth_required)],
  ];
  $("server-info").replaceChildren(
    ...facts.flatMap(([name, value]) => [element("dt", name), element("dd", String(value))]),
  );
}

/** Controls only for what the backend can do. */
function configureControls(caps) {
  const canT2I = caps.tasks.includes("text_to_image");
  const canI2I = caps.tasks.includes("image_to_image");
  $("task-t2i").hidden = !canT2I;
  $("task-i2i").hidden = !canI2I;
  const note = $("no-image-tasks");
  note.hidden = canT2I || canI2I;
  note.textContent = `This server offers ${caps.tasks.join(", ") || "no tasks"}; the playground makes images. Use the API for the rest (see /docs).`;
  if (!canT2I && !canI2I) return;
  if (!caps.tasks.includes(currentTask())) setTask(canT2I ? "text_to_image" : "image_to_image");

  const limits = caps.limits;
  const size = $("size");
  const options = [["", "Default (the model's)"], ...limits.sizes.map((s) => [s, s.replace("x", " × ")])];
  size.replaceChildren(...options.map(([value, text]) => new Option(text, value)), new Option("Custom…", "custom"));
  const side = limits.max_width ?? Math.floor(Math.sqrt(limits.max_pixels));
  $("width").max = side;
  $("height").max = limits.max_height ?? side;
  $("count").max = limits.max_n;
  $("form-controls").disabled = false;
  applyTask();
}

/** The adapter picker: one row (tick, strength) per adapter GET /v1/adapters lists; hidden without any. */
async function listAdapters(caps) {
  let adapters = [];
  if (caps.features.lora) {
    try {
      adapters = (await getJson("v1/adapters")).data;
    } catch (err) {
      showBanner(`Could not list the LoRA adapters: ${err.message}`);
    }
  }
  const rows = adapters.map((adapter, index) => {
    const tick = Object.assign(document.createElement("input"), { type: "checkbox", value: adapter.id });
    const label = element("label", adapter.id);
    label.prepend(tick);
    const scale = Object.assign(document.createElement("input"), {
      type: "number", id: `lora-scale-${index}`, min: -10, max: 10, step: 0.05, value: 1, inputMode: "decimal",
    });
    scale.dataset.adapter = adapter.id;
    const scaleLabel = element("label", `Strength of ${adapter.id}`);
    scaleLabel.htmlFor = scale.id;
    scaleLabel.className = "visually-hidden";
    const row = document.createElement("li");
    row.append(label, scaleLabel, scale);
    return row;
  });
  $("lora-list").replaceChildren(...rows);
  $("lora-controls").hidden = rows.length === 0;
}

/** The ticked adapters as the API's `lora` objects. */
function chosenAdapters() {
  return [...$("lora-list").querySelectorAll("li")]
    .filter((row) => row.querySelector("input[type=checkbox]").checked)
    .map((row) => {
      const scale = row.querySelector("input[type=number]");
      const name = scale.dataset.adapter;
      return { source: name, scale: numberField(scale.id, `Strength of ${name}`, -10, 10, false) ?? 1 };
    });
}

// ---- the form ------------------------------------------------------------------------------
function wire() {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    generate();
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  for (const radio of form.elements.task) radio.addEventListener("change", applyTask);
  $("size").addEventListener("change", () => ($("custom-size").hidden = $("size").value !== "custom"));
  $("seed").addEventListener("input", () => setSeedMode("keep"));
  $("strength").addEventListener("input", () => ($("strength-value").value = $("strength").value));
  form.addEventListener("input", (event) => event.target.removeAttribute?.("aria-invalid"));

  $("image-file").addEventListener("change", () => {
    const file = $("image-file").files[0];
    if (file) loadInput(file);
  });
  const zone = $("drop-zone");
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // a dropped file must not replace the page
    zone.classList.add("dragging");
  });
  window.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) zone.classList.remove("dragging");
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    if (!state.caps?.tasks.includes("image_to_image")) return;
    setTask("image_to_image");
    loadInput(event.dataTransfer.files[0]);
  });

  for (const radio of form.elements["mask-tool"]) {
    radio.addEventListener("change", () => (mask.erasing = form.elements["mask-tool"].value === "erase"));
  }
  $("brush-size").addEventListener("input", () => {
    mask.brush = Number($("brush-size").value);
    $("brush-size-value").value = $("brush-size").value;
  });
  $("mask-clear").addEventListener("click", () => mask.clear());

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    keyStore.set(key);
    $("api-key").value = "";
    $("key-message").textContent = "Checking the key…";
    gallery.refresh();
    connect();
  });
  $("key-forget").addEventListener("click", () => {
    keyStore.clear();
    askForKey("The key is forgotten. Enter a key to use this server.");
  });
  $("key-toggle").addEventListener("click", () => {
    const panel = $("key-panel");
    panel.hidden = !panel.hidden;
    $("key-toggle").setAttribute("aria-expanded", String(!panel.hidden));
    if (!panel.hidden) $("api-key").focus();
  });
  apiEvents.addEventListener("unauthorized", (event) => {
    const why = keyStore.get() ? `The server refused the key: ${event.detail}` : event.detail;
    askForKey(`${why}. Enter a valid key.`);
  });
  window.addEventListener("pagehide", () => {
    for (const card of state.cards.values()) card.stop(); // the jobs go on; a reload follows them again
  });
}

function currentTask() {
  return form.elements.task.value;
}

function setTask(task) {
  form.elements.task.value = task;
  applyTask();
}

function applyTask() {
  const i2i = currentTask() === "image_to_image";
  $("i2i-controls").hidden = !i2i;
  $("size-controls").hidden = i2i; // the input image sets the size
  const masks = Boolean(state.caps?.features.mask);
  $("mask-tools").hidden = !(i2i && masks && state.input);
  $("mask-canvas").hidden = !masks;
}

function setSeedMode(mode) {
  form.elements["seed-mode"].value = mode;
}

async function generate() {
  clearFormError();
  let request;
  try {
    request = buildRequest();
  } catch (err) {
    showFormError(err.message, err.field);
    return;
  }
  const button = $("generate");
  button.disabled = true;
  try {
    const view = await postJson("v1/jobs", request.body);
    const job = { id: view.id, task: request.body.task, params: request.params, created: Date.now() };
    pendingJobs.add(job);
    track(job);
    announce("Job submitted.");
  } catch (err) {
    showFormError(err.message, err.param);
  } finally {
    button.disabled = false;
  }
}

/** The job's body from the form ({body, params}: params are what the gallery keeps), or a field error. */
function buildRequest() {
  const task = currentTask();
  const limits = state.caps.limits;
  const prompt = $("prompt").value.trim();
  if (!prompt) throw fieldError("Write a prompt first.", "prompt");
  const params = { prompt, model: state.caps.model }; // the served id: the engine's may be a local path
  const negative = $("negative-prompt").value.trim();
  if (negative) params.negative_prompt = negative;
  const steps = numberField("steps", "Steps", 1, 10000, true);
  if (steps !== null) params.steps = steps;
  const guidance = numberField("guidance", "Guidance", 0, 1000, false);
  if (guidance !== null) params.guidance_scale = guidance;
  params.n = numberField("count", "Count", 1, limits.max_n, true) ?? 1;
  if (form.elements["seed-mode"].value === "keep") {
    const seed = numberField("seed", "Seed", 0, MAX_SEED, true);
    if (seed === null) throw fieldError("Keep needs a seed: type one, or choose Random.", "seed");
    params.seed = seed;
  }
  const adapters = chosenAdapters();
  if (adapters.length) params.lora = adapters;
  const body = { task, ...params };
  if (task === "text_to_image") {
    const size = sizeValue(limits);
    if (size) body.size = params.size = size;
  } else {
    if (!state.input) throw fieldError("Choose or drop an input image first.", "image-file");
    body.strength = params.strength = Number($("strength").value);
    body.image = state.input.dataUrl;
    const painted = state.caps.features.mask ? mask.toDataUrl() : null;
    if (painted) {
      body.mask = painted;
      params.masked = true;
    }
    if (JSON.stringify(body).length > limits.max_body_bytes) {
      throw fieldError(`The image is too big for this server (${mib(limits.max_body_bytes)} per request).`, "image-file");
    }
  }
  return { body, params };
}

function sizeValue(limits) {
  const choice = $("size").value;
  if (choice !== "custom") return choice || null;
  const width = numberField("width", "Width", 8, Number($("width").max), true);
  const height = numberField("height", "Height", 8, Number($("height").max), true);
  if (width === null || height === null) throw fieldError("Custom size: give a width and a height.", "width");
  if (width * height > limits.max_pixels) {
    throw fieldError(`${width} × ${height} is over this server's ${limits.max_pixels.toLocaleString()} pixels.`, "width");
  }
  return `${width}x${height}`;
}

function numberField(id, name, min, max, whole) {
  const text = $(id).value.trim();
  if (!text) return null;
  const value = Number(text);
  if (!Number.isFinite(value) || (whole && !Number.isInteger(value)) || value < min || value > max) {
    throw fieldError(`${name}: ${whole ? "a whole number" : "a number"} from ${min} to ${max}.`, id);
  }
  return value;
}

function fieldError(message, field) {
  return Object.assign(new Error(message), { field });
}

function showFormError(message, field) {
  const box = $("form-error");
  box.textContent = message;
  box.hidden = false;
  const control = field && $(CONTROLS[field] || field);
  if (control && !control.closest("[hidden]")) {
    control.setAttribute("aria-invalid", "true");
    control.focus();
  }
}

function clearFormError() {
  $("form-error").hidden = true;
  for (const control of form.querySelectorAll("[aria-invalid]")) control.removeAttribute("aria-invalid");
}

// ---- the input image -----------------------------------------------------------------------
async function loadInput(file) {
  clearFormError();
  const limits = state.caps.limits;
  if (file.type && !file.type.startsWith("image/")) {
    showFormError(`${file.name || "That file"} is not an image.`, "image-file");
    return;
  }
  if ((file.size * 4) / 3 > limits.max_body_bytes) {
    showFormError(`The image is too big for this server (${mib(limits.max_body_bytes)} per request).`, "image-file");
    return;
  }
  const dataUrl = await new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
  const probe = new Image();
  probe.src = dataUrl;
  try {
    await probe.decode();
  } catch {
    showFormError(`This browser cannot read ${file.name || "that image"}.`, "image-file");
    return;
  }
  const { naturalWidth: width, naturalHeight: height } = probe;
  if (width * height > limits.max_pixels) {
    showFormError(`${width} × ${height} is over this server's ${limits.max_pixels.toLocaleString()} pixels.`, "image-file");
    return;
  }
  state.input = { dataUrl, width, height };
  $("input-image").src = dataUrl;
  mask.reset(width, height);
  $("stage").hidden = false;
  $("image-info").textContent = `${file.name || "Image"}: ${width} × ${height}`;
  applyTask();
}

// ---- jobs and the gallery ------------------------------------------------------------------
function track(job) {
  const card = new JobCard(job, {
    template: $("job-template"),
    list: $("jobs"),
    cancelsRunning: state.caps.features.cancel_running,
    onFinish: finished,
  });
  state.cards.set(job.id, card);
  card.follow();
}

function finished(job, event) {
  const card = state.cards.get(job.id);
  state.cards.delete(job.id);
  if (event.type === "lost" && (event.status === 401 || event.status === 0)) {
    if (event.status === 401) card?.remove(); // followed again once a key is given
    return; // kept as pending: a reload follows it again
  }
  pendingJobs.remove(job.id);
  const results = event.result || [];
  if (results.length && !gallery.add(job, results)) {
    showBanner("This browser would not keep the gallery (storage full or disabled): it lasts until you leave.");
  }
  if (results.length && job.params.seed === undefined && form.elements["seed-mode"].value === "random") {
    $("seed").value = results[0].seed ?? ""; // so Keep reuses the seed just drawn
  }
  const count = `${results.length} picture${results.length === 1 ? "" : "s"}`;
  const messages = {
    completed: `Done: ${count} added to the gallery.`,
    cancelled: results.length ? `Cancelled; ${count} kept.` : "Cancelled.",
  };
  announce(messages[event.type] || `The job failed: ${event.error?.message || "unknown error"}`);
}

function useSettings(item) {
  if (state.caps.tasks.includes(item.task)) setTask(item.task);
  const meta = item.metadata;
  const params = item.params;
  $("prompt").value = params.prompt || "";
  $("negative-prompt").value = params.negative_prompt || "";
  $("steps").value = meta.steps ?? params.steps ?? "";
  $("guidance").value = meta.guidance_scale ?? params.guidance_scale ?? "";
  $("count").value = params.n || 1;
  if (item.seed !== null && item.seed !== undefined) {
    $("seed").value = item.seed;
    setSeedMode("keep");
  }
  const adapters = new Map((params.lora || []).map((adapter) => [adapter.source, adapter.scale]));
  for (const row of $("lora-list").querySelectorAll("li")) {
    const scale = row.querySelector("input[type=number]");
    row.querySelector("input[type=checkbox]").checked = adapters.has(scale.dataset.adapter);
    scale.value = adapters.get(scale.dataset.adapter) ?? 1;
  }
  if (item.task === "text_to_image") {
    const size = meta.width && meta.height ? `${meta.width}x${meta.height}` : params.size || "";
    const preset = [...$("size").options].some((option) => option.value === size);
    $("size").value = preset ? size : size ? "custom" : "";
    if (!preset && size) [$("width").value, $("height").value] = size.split("x");
    $("custom-size").hidden = $("size").value !== "custom";
  } else if (params.strength) {
    $("strength").value = params.strength;
    $("strength-value").value = params.strength;
  }
  applyTask();
  announce("The form now has that picture's settings.");
  $("prompt").focus();
}

async function editImage(item, blob) {
  if (!state.caps.tasks.includes("image_to_image")) {
    showBanner("This server does not do image → image.");
    return;
  }
  setTask("image_to_image");
  $("prompt").value = item.params.prompt || "";
  await loadInput(new File([blob], `abstractvision-${item.seed ?? "result"}.png`, { type: blob.type }));
  announce("The picture is the input image now: paint a mask or change the prompt, then generate.");
  $("prompt").focus();
}

// ---- small helpers -------------------------------------------------------------------------
function showBanner(text) {
  $("banner").textContent = text;
  $("banner").hidden = false;
}

function hideBanner() {
  $("banner").hidden = true;
}

function announce(text) {
  $("announcer").textContent = text;
}

function element(tag, text) {
  const node = document.createElement(tag);
  node.textContent = text;
  return node;
}

function hasFiles(event) {
  return [...(event.dataTransfer?.types || [])].includes("Files");
}

function mib(bytes) {
  return `${Math.round(bytes / 1024 / 1024)} MiB`;
}
