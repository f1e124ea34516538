// The inpainting mask: painted on a canvas laid over the input image, sent as the API's `mask`.
//
// The canvas has the image's own pixel size (not its size on screen), so what is sent is a mask
// of the image's size without resampling; the brush is sized in screen pixels and scaled, so it
// feels the same on a phone and on a large screen. Strokes are drawn opaque and the canvas is
// shown half transparent; the export turns painted pixels white (repaint) and the rest black.

export class MaskPainter {
  constructor(canvas) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d", { willReadFrequently: true });
    this.brush = 32;
    this.erasing = false;
    this.last = null;
    canvas.addEventListener("pointerdown", (event) => this.#down(event));
    canvas.addEventListener("pointermove", (event) => this.#move(event));
    for (const name of ["pointerup", "pointercancel", "lostpointercapture"]) {
      canvas.addEventListener(name, () => (this.last = null));
    }
  }

  /** A fresh, empty mask for an image of width x height pixels. */
  reset(width, height) {
    this.canvas.width = width;
    this.canvas.height = height;
    this.clear();
  }

  clear() {
    this.ctx.clearRect(0, 0, this.canvas.width, this.canvas.height);
  }

  /** The mask as a PNG data URL of the image's size (white = repaint), or null when nothing is painted. */
  toDataUrl() {
    const { width, height } = this.canvas;
    if (!width || !height) return null;
    const painted = this.ctx.getImageData(0, 0, width, height).data;
    const out = document.createElement("canvas");
    out.width = width;
    out.height = height;
    const outCtx = out.getContext("2d");
    const mask = outCtx.createImageData(width, height);
    let any = false;
    for (let i = 0; i < painted.length; i += 4) {
      const value = painted[i + 3] >= 128 ? 255 : 0;
      any ||= value === 255;
      mask.data[i] = mask.data[i + 1] = mask.data[i + 2] = value;
      mask.data[i + 3] = 255;
    }
    if (!any) return null;
    outCtx.putImageData(mask, 0, 0);
    return out.toDataURL("image/png");
  }

  #point(event) {
    const rect = this.canvas.getBoundingClientRect();
    const scale = this.canvas.width / rect.width;
    return { x: (event.clientX - rect.left) * scale, y: (event.clientY - rect.top) * scale, scale };
  }

  #down(event) {
    if (event.button !== 0) return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.last = this.#point(event);
    this.#stroke(this.last, this.last);
  }

  #move(event) {
    if (!this.last) return;
    const point = this.#point(event);
    this.#stroke(this.last, point);
    this.last = point;
  }

  #stroke(from, to) {
    const ctx = this.ctx;
    ctx.globalCompositeOperation = this.erasing ? "destination-out" : "source-over";
    ctx.strokeStyle = ctx.fillStyle = "rgb(255 48 96)";
    ctx.lineWidth = this.brush * to.scale;
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.beginPath();
    if (from === to) {
      ctx.arc(to.x, to.y, ctx.lineWidth / 2, 0, 2 * Math.PI); // a click paints a dot
      ctx.fill();
      return;
    }
    ctx.moveTo(from.x, from.y);
    ctx.lineTo(to.x, to.y);
    ctx.stroke();
  }
}
