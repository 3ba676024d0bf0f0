// Starts the client. Under a first screen the server drew (an anonymous reader's feed), it
// waits until that screen's first meme has painted, or a second has passed: the scripts must
// not compete with the meme for the network and the processor. The page works meanwhile: its
// links are links.

const meme = document.querySelector("main img[fetchpriority=high]");
if (meme) {
  const loaded = meme.complete ? Promise.resolve() : new Promise((done) => ["load", "error"].forEach((e) => meme.addEventListener(e, done, { once: true })));
  const painted = loaded.then(() => new Promise((done) => requestAnimationFrame(() => setTimeout(done))));
  await Promise.race([painted, new Promise((done) => setTimeout(done, 1000))]);
}
await import("./main.js");
