// `darkfs --version`: the version in package.json (bundled into the single binary by esbuild).
import pkg from '../../package.json' with { type: 'json' }

export const VERSION: string = pkg.version
