// Serves the files of one directory on 127.0.0.1 (port 0) for the browser test: a real origin, because Chromium
// refused WebSockets from a page that Playwright fulfilled by request interception. Prints {"port":N} when ready.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';

const dir = process.argv[2];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript' };
const server = createServer(async (req, res) => {
  const name = basename(new URL(req.url ?? '/', 'http://x').pathname) || 'index.html';
  try {
    const body = await readFile(join(dir, name));
    res.writeHead(200, { 'content-type': TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
server.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
