// This browser's results: what is kept (localStorage), and the gallery that shows it.
//
// Only file ids and the settings are kept, never image bytes: localStorage holds a few MiB at
// most, and the server keeps every result (GET /v1/files/{id}). Pictures are fetched with the
// key when a card scrolls into view and shown as blob: URLs. Jobs still running are kept too,
// so a reload picks them up again.

import { fetchFile } from "./api.js";

const ITEMS_KEY = "abstractvision.playground.gallery.v1";
const PENDING_KEY = "abstractvision.playground.pending.v1";
const MAX_ITEMS = 500;
// Result metadata worth keeping and showing (the rest stays on the server).
const KEPT_METADATA = ["model", "width", "height", "steps", "guidance_scale", "strength", "negative_prompt"];

function read(key) {
  try {
    const value = JSON.parse(localStorage.getItem(key) || "[]");
    return Array.isArray(value) ? value : [];
  } catch {
    return [];
  }
}

function write(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
    return true;
  } catch {
    return false; // full or disabled: the gallery lasts until the page is closed
  }
}

export const pendingJobs = {
  all: () => read(PENDING_KEY),
  add(job) {
    write(PENDING_KEY, [job, ...read(PENDING_KEY).filter((j) => j.id !== job.id)]);
  },
  remove(jobId) {
    write(PENDING_KEY, read(PENDING_KEY).filter((j) => j.id !== jobId));
  },
};

/** Gallery entries, newest first: {file_id, job_id, seed, task, params, metadata, created}. */
export class Gallery {
  constructor(list, emptyNote, template, actions) {
    this.list = list;
    this.emptyNote = emptyNote;
    this.template = template;
    this.actions = actions; // {reuse(item), edit(item, blob)}
    this.items = read(ITEMS_KEY);
    this.pictures = new Map(); // file_id -> Promise<{blob, url}>
    this.observer = new IntersectionObserver((entries) => this.#visible(entries), { rootMargin: "200px" });
  }

  /** Add a finished job's results (newest first) and show them; false if they could not be kept. */
  add(job, results) {
    const fresh = results.map((result) => ({
      file_id: result.file_id,
      job_id: job.id,
      seed: result.seed ?? result.metadata?.seed ?? null,
      content_type: result.content_type,
      task: job.task,
      params: job.params,
      metadata: Object.fromEntries(
        KEPT_METADATA.filter((k) => result.metadata?.[k] != null).map((k) => [k, result.metadata[k]]),
      ),
      created: Date.now(),
    }));
    this.items = [...fresh, ...this.items].slice(0, MAX_ITEMS);
    const kept = write(ITEMS_KEY, this.items);
    this.render();
    return kept;
  }

  remove(fileId) {
    this.items = this.items.filter((item) => item.file_id !== fileId);
    write(ITEMS_KEY, this.items);
    this.render();
  }

  /** Forget fetched pictures (after the key changed, a refused fetch may now succeed). */
  refresh() {
    for (const picture of this.pictures.values()) picture.then((p) => URL.revokeObjectURL(p.url)).catch(() => {});
    this.pictures.clear();
    this.render();
  }

  /** The picture ({blob, url}: a blob: URL of it), fetched once. */
  picture(fileId) {
    if (!this.pictures.has(fileId)) {
      const picture = fetchFile(fileId).then((blob) => ({ blob, url: URL.createObjectURL(blob) }));
      picture.catch(() => this.pictures.delete(fileId)); // let a later try fetch again
      this.pictures.set(fileId, picture);
    }
    return this.pictures.get(fileId);
  }

  render() {
    this.observer.disconnect();
    this.list.replaceChildren(...this.items.map((item) => this.#card(item)));
    this.emptyNote.hidden = this.items.length > 0;
  }

  #card(item) {
    const card = this.template.content.firstElementChild.cloneNode(true);
    card.dataset.fileId = item.file_id;
    card.dataset.seed = item.seed ?? "";
    const prompt = item.params.prompt || "";
    card.querySelector(".card-prompt").textContent = prompt;
    card.querySelector(".card-image img").alt = prompt ? `Result for “${prompt}”` : "Result";
    card.querySelector(".card-facts").replaceChildren(...facts(item));
    const label = (text) => `${text} (seed ${item.seed ?? "unknown"})`;
    const download = card.querySelector(".card-download");
    const reuse = card.querySelector(".card-reuse");
    const edit = card.querySelector(".card-edit");
    const remove = card.querySelector(".card-remove");
    download.setAttribute("aria-label", label("Download"));
    reuse.setAttribute("aria-label", label("Use these settings"));
    edit.setAttribute("aria-label", label("Edit this image"));
    remove.setAttribute("aria-label", label("Remove from the gallery"));
    download.addEventListener("click", () => this.#download(item, card));
    reuse.addEventListener("click", () => this.actions.reuse(item));
    edit.addEventListener("click", () => this.#edit(item, card));
    remove.addEventListener("click", () => this.remove(item.file_id));
    this.observer.observe(card);
    return card;
  }

  #visible(entries) {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      this.observer.unobserve(entry.target);
      this.#show(entry.target);
    }
  }

  async #show(card) {
    const img = card.querySelector(".card-image img");
    try {
      img.src = (await this.picture(card.dataset.fileId)).url;
      img.hidden = false;
      card.querySelector(".card-image-error").hidden = true;
    } catch (err) {
      unavailable(card, err);
    }
  }

  async #download(item, card) {
    try {
      const link = document.createElement("a");
      link.href = (await this.picture(item.file_id)).url;
      link.download = `abstractvision-${item.seed ?? item.file_id.slice(0, 12)}.${extension(item.content_type)}`;
      link.click();
    } catch (err) {
      unavailable(card, err);
    }
  }

  async #edit(item, card) {
    try {
      this.actions.edit(item, (await this.picture(item.file_id)).blob);
    } catch (err) {
      unavailable(card, err);
    }
  }
}

function unavailable(card, err) {
  const note = card.querySelector(".card-image-error");
  note.textContent = `Picture not available: ${err.message}`;
  note.hidden = false;
}

function extension(contentType) {
  return { "image/jpeg": "jpg", "image/webp": "webp" }[contentType] || "png";
}

const TASK_NAMES = { text_to_image: "Text → image", image_to_image: "Image → image" };

/** The settings a card shows: what the engine reports it used, else what was asked. */
function facts(item) {
  const meta = item.metadata;
  const params = item.params;
  const size = meta.width && meta.height ? `${meta.width} × ${meta.height}` : params.size;
  const rows = [
    ["Seed", item.seed],
    ["Task", TASK_NAMES[item.task] || item.task],
    ["Size", size],
    ["Steps", meta.steps ?? params.steps],
    ["Guidance", meta.guidance_scale ?? params.guidance_scale],
    ["Strength", item.task === "image_to_image" ? (meta.strength ?? params.strength) : null],
    ["Negative", params.negative_prompt],
    ["LoRA", (params.lora || []).map((adapter) => `${adapter.source} × ${adapter.scale}`).join(", ")],
    ["Model", params.model ?? meta.model],
    ["Made", new Date(item.created).toLocaleString()],
  ];
  return rows
    .filter(([, value]) => value !== null && value !== undefined && value !== "")
    .flatMap(([name, value]) => {
      const term = document.createElement("dt");
      const detail = document.createElement("dd");
      term.textContent = name;
      detail.textContent = String(value);
      if (name === "Seed") detail.className = "card-seed";
      return [term, detail];
    });
}
