// One process of bench:scale's hosts (scale.ts with DARKFS_SCALE_PROCS > 0): a HostGroup
// (_scale-hosts.ts) driven over Node's IPC channel (fork with serialization 'advanced'). Each
// message { id, method, args } is answered { id, result } or { id, error }; 'close' stops the
// hosts, answers, and ends the process. The parent going away ends it too (its hosts stopped).
import { HostGroup, dispatch } from './_scale-hosts.ts'

interface Request { id: number, method: string, args: unknown[] }

const group = new HostGroup()
let closing: Promise<void> | undefined
const close = async (): Promise<void> => { closing ??= group.close(); await closing }

process.on('message', (msg: Request) => {
  const reply = (r: { result?: unknown, error?: string }): void => { if (process.connected) process.send!({ id: msg.id, ...r }) }
  const work = msg.method === 'close' ? close() : dispatch(group, msg.method, msg.args)
  work.then(result => {
    reply({ result })
    if (msg.method === 'close') process.disconnect?.()
  }, (err: Error) => { reply({ error: err.stack ?? String(err) }) })
})
process.on('disconnect', () => {
  close().then(() => { process.exit(0) }, (err: Error) => {
    process.stderr.write(`scale worker ${process.pid}: closing failed: ${err.stack ?? err.message}\n`)
    process.exit(1)
  })
})
