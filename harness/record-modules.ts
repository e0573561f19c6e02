// A module hook that records every module a process loads (`node --import harness/record-modules.ts`,
// e.g. through NODE_OPTIONS): on exit it writes their URLs, one a line, to the file named by
// $DARKFS_RECORD_MODULES. Tests use it to check what a command loads (test/cli/cli.test.ts:
// client commands never load libp2p).
import { registerHooks } from 'node:module'
import { writeFileSync } from 'node:fs'

const file = process.env.DARKFS_RECORD_MODULES
if (file !== undefined && file !== '') {
  const loaded: string[] = []
  registerHooks({
    load (url, context, next) {
      loaded.push(url)
      return next(url, context)
    }
  })
  // sync on purpose: 'exit' handlers cannot wait, and this runs in a test's child process only
  process.on('exit', () => { writeFileSync(file, loaded.join('\n') + '\n') })
}
