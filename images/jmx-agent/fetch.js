// Downloads a URL to a file and checks its sha256: node fetch.js <url> <sha256> <file>.
// Three tries with a pause between them: Maven Central drops a connection now and then.
const { createHash } = require("node:crypto");
const { writeFileSync } = require("node:fs");

async function main([url, sha256, file]) {
  if (!url || !/^[0-9a-f]{64}$/.test(sha256 ?? "") || !file) throw new Error("usage: node fetch.js <url> <sha256> <file>");
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(120_000) });
      if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
      const body = Buffer.from(await res.arrayBuffer());
      const got = createHash("sha256").update(body).digest("hex");
      if (got !== sha256) throw new Error(`${url}: sha256 ${got}, expected ${sha256}`);
      writeFileSync(file, body);
      console.log(`${file}: ${body.length} bytes, sha256 ok`);
      return;
    } catch (err) {
      if (attempt >= 3 || /sha256/.test(String(err))) throw err;
      console.error(`try ${attempt} of 3 failed (${err.message}); again in ${attempt * 5} s`);
      await new Promise((r) => setTimeout(r, attempt * 5000));
    }
  }
}

main(process.argv.slice(2)).catch((err) => {
  console.error(err.message);
  process.exit(1);
});
