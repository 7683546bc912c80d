// QR codes in: the camera (credential or pickup link) or a picture file, decoded with
// @paulmillr/qr. Resolves with the text, or null if the person closed the scanner.
import decodeQR from "@paulmillr/qr/decode.js";
import { QRCanvas, frontalCamera, frameLoop } from "@paulmillr/qr/dom.js";

const $ = (id) => document.getElementById(id);

/** The text of the QR code in an image File. Throws if there is none. */
export async function decodeQrFile(file) {
  const bitmap = await createImageBitmap(file);
  const canvas = document.createElement("canvas");
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.drawImage(bitmap, 0, 0);
  const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
  return decodeQR({ width: img.width, height: img.height, data: img.data });
}

export function scanQr() {
  return new Promise((resolve) => {
    const box = $("scanner");
    let camera = null;
    let stopLoop = null;
    const finish = (text) => {
      if (stopLoop) stopLoop();
      if (camera) camera.stop();
      box.hidden = true;
      $("scan-close").onclick = null;
      $("scan-file").onchange = null;
      resolve(text);
    };
    box.hidden = false;
    $("scan-close").onclick = () => finish(null);
    $("scan-file").onchange = async (e) => {
      try {
        finish(await decodeQrFile(e.target.files[0]));
      } catch {
        /* no code in that picture: keep scanning */
      }
    };
    frontalCamera($("scan-video")).then((cam) => {
      camera = cam;
      const canvas = new QRCanvas();
      stopLoop = frameLoop(() => {
        const text = camera.readFrame(canvas);
        if (text) finish(text);
      });
    }).catch(() => { /* no camera or no permission: the photo button still works */ });
  });
}
