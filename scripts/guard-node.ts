// Fails loudly when a project script runs on a Node other than the one pinned in package.json.
// The machines ship an older Node on PATH; npm scripts put node_modules/.bin (the pinned Node)
// first, so anything that bypasses npm (a bare `node`, `node_modules/.bin/mocha` run directly)
// lands here with the wrong runtime and must stop with the reason, not fail later and obscurely.
import { readFileSync } from 'node:fs'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
const wanted: string = pkg.devDependencies.node

if (process.versions.node !== wanted) {
  process.stderr.write(
    `darkfs: running on Node ${process.versions.node}, but the project is pinned to Node ${wanted}.\n` +
    '  Run it through npm (npm test, npm start, npx darkfs ...), which puts the pinned Node first on PATH,\n' +
    '  after `bash scripts/setup` has installed it.\n')
  process.exit(1)
}
