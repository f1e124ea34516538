// One card per job this page follows: progress bar with step counts, preview, Cancel (that job
// only), and the outcome. A finished job's pictures go to the gallery; the card then leaves,
// unless it has something to say (an error, a cancel) that the user dismisses.

import { followJob, isFinal, postJson } from "./api.js";

const TASK_NAMES = { text_to_image: "Text → image", image_to_image: "Image → image" };

export class JobCard {
  /**
   * job: {id, task, params, created}; options: {template, list, cancelsRunning, onFinish(job, event)}.
   */
  constructor(job, { template, list, cancelsRunning, onFinish }) {
    this.job = job;
    this.cancelsRunning = cancelsRunning;
    this.onFinish = onFinish;
    this.started = 0; // images begun (a job with n > 1 runs them one after another)
    this.controller = new AbortController();
    this.el = template.content.firstElementChild.cloneNode(true);
    this.el.dataset.jobId = job.id;
    this.$ = (selector) => this.el.querySelector(selector);
    const prompt = job.params.prompt || "";
    this.$(".job-title").textContent = `${TASK_NAMES[job.task] || job.task}: ${prompt}`;
    this.$(".job-cancel").addEventListener("click", () => this.cancel());
    this.$(".job-dismiss").addEventListener("click", () => this.remove());
    this.setStatus("queued", "Submitted…");
    list.prepend(this.el);
  }

  /** Follow the job's events until it ends; errors end up on the card, never as unhandled rejections. */
  async follow() {
    try {
      const final = await followJob(this.job.id, (event) => this.update(event), this.controller.signal);
      this.finish(final);
    } catch (err) {
      if (err.name === "AbortError") return; // the page is going away, the job goes on on the server
      this.showError(err);
      this.setStatus("lost", "Lost track of this job.");
      this.ended();
      this.onFinish(this.job, { type: "lost", status: err.status, error: { message: err.message } });
    }
  }

  update(event) {
    const progress = event.progress || {};
    const status = event.status || this.el.dataset.status;
    if (event.type === "started") this.started += 1;
    if (event.type === "preview" && event.b64_json) {
      const img = this.$(".job-preview");
      img.src = `data:image/png;base64,${event.b64_json}`;
      img.hidden = false;
    }
    if (status === "queued") {
      const position = event.queue_position ? ` (position ${event.queue_position})` : "";
      this.setStatus("queued", `Queued${position}`);
    } else if (event.type === "loading") {
      this.setStatus("running", event.message || "Loading the model…");
    } else if (status === "running") {
      this.setStatus("running", this.progressText(progress));
    }
    const bar = this.$(".job-progress");
    if (progress.total) {
      bar.max = progress.total;
      bar.value = progress.step || 0;
    }
    this.$(".job-cancel").disabled = status === "running" && !this.cancelsRunning;
    this.$(".job-cancel").title =
      status === "running" && !this.cancelsRunning ? "This backend cannot stop a run once it has started." : "";
  }

  progressText(progress) {
    const count = this.job.params.n || 1;
    const image = count > 1 && this.started ? `Image ${Math.min(this.started, count)} of ${count}, ` : "";
    if (!progress.total) return `${image}Running…`;
    return `${image}step ${progress.step || 0} of ${progress.total}`;
  }

  finish(event) {
    const bar = this.$(".job-progress");
    if (event.type === "completed") {
      bar.value = bar.max;
      this.setStatus("completed", "Done");
    } else if (event.type === "cancelled") {
      this.setStatus("cancelled", this.stepNote("Cancelled"));
    } else {
      this.setStatus("failed", "Failed");
      this.showError(event.error || {});
    }
    this.onFinish(this.job, event);
    if (event.type === "completed") this.remove();
    else this.ended();
  }

  stepNote(what) {
    const bar = this.$(".job-progress");
    return bar.hasAttribute("value") && bar.max > 1 ? `${what} at step ${bar.value} of ${bar.max}` : what;
  }

  async cancel() {
    const button = this.$(".job-cancel");
    button.disabled = true;
    this.setStatus(this.el.dataset.status, "Cancelling…");
    try {
      const view = await postJson(`v1/jobs/${encodeURIComponent(this.job.id)}/cancel`, undefined);
      if (isFinal(view.status) && view.status !== "cancelled") button.hidden = true;
    } catch (err) {
      this.showError(err);
      button.disabled = false;
    }
  }

  setStatus(status, text) {
    this.el.dataset.status = status;
    this.$(".job-status").textContent = text;
  }

  showError(err) {
    const box = this.$(".job-error");
    box.textContent = err.message || "the job failed";
    box.hidden = false;
  }

  ended() {
    this.$(".job-cancel").hidden = true;
    this.$(".job-dismiss").hidden = false;
  }

  stop() {
    this.controller.abort();
  }

  remove() {
    this.stop();
    this.el.remove();
  }
}
