// Decoding a blurhash (https://blurha.sh) into a small canvas: the placeholder painted while a
// meme loads, and the cover over NSFW media.

const DIGITS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";
const decode83 = (text) => [...text].reduce((value, c) => value * 83 + DIGITS.indexOf(c), 0);
const toLinear = (v) => ((v /= 255) <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
const toSrgb = (v) => Math.round(255 * (v <= 0.0031308 ? v * 12.92 : 1.055 * Math.max(0, Math.min(1, v)) ** (1 / 2.4) - 0.055));
const signPow = (v, e) => Math.sign(v) * Math.abs(v) ** e;

function pixels(hash, width, height) {
  const sizes = decode83(hash[0]);
  const nx = (sizes % 9) + 1;
  const ny = Math.floor(sizes / 9) + 1;
  const max = (decode83(hash[1]) + 1) / 166;
  const colors = [];
  for (let i = 0; i < nx * ny; i++) {
    if (i === 0) {
      const value = decode83(hash.slice(2, 6));
      colors.push([value >> 16, (value >> 8) & 255, value & 255].map(toLinear));
    } else {
      const value = decode83(hash.slice(4 + i * 2, 6 + i * 2));
      colors.push([Math.floor(value / 361), Math.floor(value / 19) % 19, value % 19].map((q) => signPow((q - 9) / 9, 2) * max));
    }
  }
  const out = new Uint8ClampedArray(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const rgb = [0, 0, 0];
      for (let j = 0; j < ny; j++) {
        for (let i = 0; i < nx; i++) {
          const basis = Math.cos((Math.PI * x * i) / width) * Math.cos((Math.PI * y * j) / height);
          colors[i + j * nx].forEach((c, k) => (rgb[k] += c * basis));
        }
      }
      out.set([...rgb.map(toSrgb), 255], 4 * (x + y * width));
    }
  }
  return out;
}

/** A 32-pixel-wide canvas painted from `hash` (the page stretches it), or null when the hash
 * does not decode. */
export function placeholder(hash, aspect) {
  const width = 32;
  const height = Math.max(1, Math.min(64, Math.round(width / aspect)));
  if (!hash || hash.length < 6 || hash.length !== 4 + 2 * ((decode83(hash[0]) % 9) + 1) * (Math.floor(decode83(hash[0]) / 9) + 1)) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.className = "blur";
  canvas.setAttribute("aria-hidden", "true");
  canvas.getContext("2d").putImageData(new ImageData(pixels(hash, width, height), width, height), 0, 0);
  return canvas;
}
