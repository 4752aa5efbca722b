// Small pieces several views share: files shown or downloaded through the API, and
// names filled in once they arrive.

import { fileInfo, fileUrl } from "./api.js";
import { h } from "./dom.js";

/** An image file, fetched with the key and shown from a blob: URL. */
export function image(fileId) {
  const img = h("img", { alt: `Image file ${fileId}`, class: "output-image" });
  const figure = h("figure", {}, img, h("figcaption", {}, fileId));
  fileUrl(fileId).then(
    (url) => img.setAttribute("src", url),
    () => figure.replaceChildren(h("p", { class: "error" }, `Image ${fileId} could not be loaded.`)),
  );
  return figure;
}

/** A button that downloads a file under its own name. */
export function download(fileId, label) {
  const button = h("button", { type: "button", class: "link" }, label || fileId);
  button.addEventListener("click", async () => {
    const [url, info] = await Promise.all([fileUrl(fileId), fileInfo(fileId)]);
    const anchor = h("a", { href: url, download: (info && info.filename) || fileId });
    document.body.append(anchor);
    anchor.click();
    anchor.remove();
  });
  return button;
}

/** A file's name, filled in when known (the id until then). */
export function fileName(fileId) {
  const span = h("span", { class: "filename" }, fileId);
  fileInfo(fileId).then((info) => {
    if (info && info.filename) span.textContent = info.filename;
  });
  return span;
}
